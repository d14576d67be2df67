// "Now": one card per machine with its current task, workspace and how long it has lasted
// (ticking between heartbeats), and a form that sets the machine's task through the API.
// The watcher of that machine applies the task with a switch, which then shows here live.

import { ApiError } from "./api.js";
import { byHost, putTask } from "./deskapi.js";
import { formatDuration } from "./deskformat.js";
import { formatAge } from "./format.js";
import { h, setText } from "./dom.js";
import { clock } from "./store.js";
import { taskName, taskStyle } from "./taskcolor.js";
import { clockText } from "./tz.js";

/** A machine is "away" when nothing was heard for this long (a few missed heartbeats). */
const AWAY_MS = 30_000;

class MachineCard {
  constructor(machine, taskList) {
    this.id = machine.id;
    this.swatch = h("span", { class: "swatch" });
    this.task = h("span", { class: "dm-now-task-name", dataset: { currentTask: "" } });
    this.host = h("a", { class: "dm-now-host", title: "Show this machine's calendar" });
    this.meta = h("div", { class: "dm-now-meta muted" });
    this.input = h("input", {
      name: "task",
      type: "text",
      list: taskList,
      maxlength: 200,
      placeholder: "Set the task…",
      "aria-label": `Task on ${machine.host}`,
      autocomplete: "off",
    });
    this.status = h("output", { class: "dm-now-status", "aria-live": "polite" });
    this.form = h(
      "form",
      { class: "dm-task-form", onsubmit: (ev) => this.submit(ev) },
      this.input,
      h("button", { type: "submit" }, "Set"),
    );
    this.el = h(
      "article",
      { class: "dm-now-card", dataset: { machine: machine.id } },
      h(
        "div",
        { class: "dm-now-head" },
        this.host,
        h("span", { class: "muted dm-now-id" }, machine.id),
      ),
      h("div", { class: "dm-now-task" }, this.swatch, this.task),
      this.meta,
      this.form,
      this.status,
    );
    this.update(machine);
  }

  update(machine) {
    this.machine = machine;
    setText(this.host, machine.host);
    const cur = machine.current;
    const task = cur ? cur.task : "";
    setText(this.task, cur ? taskName(task) : "nothing yet");
    this.task.dataset.currentTask = task;
    const colour = taskStyle(task);
    this.swatch.className = `swatch ${colour.class}`;
    this.swatch.style.cssText = colour.style;
    this.el.classList.toggle("idle", Boolean(cur && cur.idle));
    if (this.pending !== undefined && cur && cur.task === this.pending) {
      this.pending = undefined;
      setText(this.status, "");
    }
    this.tick();
  }

  /** Durations and "away" state against the server clock (called every second). */
  tick() {
    const m = this.machine;
    const cur = m.current;
    const now = clock.now();
    const away = !m.lastSeen || now - m.lastSeen > AWAY_MS;
    this.el.classList.toggle("away", away);
    if (!cur) {
      setText(this.meta, m.lastSeen ? `last heard ${formatAge(now - m.lastSeen)} ago` : "");
      return;
    }
    const parts = [cur.workspace ? `on ${cur.workspace}` : null, cur.idle ? "idle" : null];
    parts.push(`since ${clockText(cur.start, m.zone)}`);
    // between heartbeats the open interval keeps growing; when the watcher is away it ends
    // at the last thing heard
    const end = away ? cur.end : Math.max(cur.end, now);
    parts.push(formatDuration((end - cur.start) / 1000));
    if (away) parts.push(`away, last heard ${formatAge(now - m.lastSeen)} ago`);
    setText(this.meta, parts.filter(Boolean).join(" · "));
  }

  async submit(ev) {
    ev.preventDefault();
    const task = this.input.value.trim();
    this.status.classList.remove("error");
    setText(this.status, "sending…");
    try {
      await putTask(this.id, task);
      this.pending = task;
      this.input.value = "";
      setText(this.status, `sent to ${this.machine.host}'s watcher: “${taskName(task)}”`);
      if (this.machine.current && this.machine.current.task === task) this.update(this.machine);
    } catch (err) {
      this.status.classList.add("error");
      setText(this.status, err instanceof ApiError ? err.message : `failed: ${err.message}`);
    }
  }
}

/**
 * The "Now" section; `update(machines, taskNames)` keeps one card per machine, by host.
 * `hrefFor(id)` is where a card's machine name links (its calendar).
 */
export class NowStrip {
  constructor(hrefFor) {
    this.hrefFor = hrefFor;
    this.cards = new Map();
    this.list = h("datalist", { id: "dm-task-names" });
    this.grid = h("div", { class: "dm-now-cards" });
    this.empty = h(
      "p",
      { class: "muted" },
      "No machine yet. Start a watcher: sysmonstm deskmeter watch --aggregator HOST:PORT",
    );
    this.el = h(
      "section",
      { class: "dm-now", "aria-label": "Current task per machine" },
      this.empty,
      this.grid,
      this.list,
    );
    this.timer = setInterval(() => {
      for (const card of this.cards.values()) card.tick();
    }, 1000);
  }

  update(machines, taskNames) {
    for (const m of machines) {
      const card = this.cards.get(m.id);
      if (card) card.update(m);
      else {
        this.cards.set(m.id, new MachineCard(m, this.list.id));
      }
      this.cards.get(m.id).host.setAttribute("href", this.hrefFor(m.id));
    }
    const order = [...this.cards.values()].sort((a, b) => byHost(a.machine, b.machine));
    order.forEach((card, i) => {
      const there = this.grid.children[i];
      if (there !== card.el) this.grid.insertBefore(card.el, there ?? null);
    });
    this.empty.hidden = this.cards.size > 0;
    const names = [...taskNames].filter(Boolean).sort();
    const sig = names.join("\u0000");
    if (sig !== this.list.dataset.sig) {
      this.list.dataset.sig = sig;
      this.list.replaceChildren(...names.map((t) => h("option", { value: t })));
    }
  }

  destroy() {
    clearInterval(this.timer);
  }
}
