// Deskmeter's calendar at /deskmeter?view=day|week|month&date=YYYY-MM-DD&machine=ID: the
// current task of every machine on top, then the chosen period as task blocks with totals
// per day, task and machine. Drawn in the machine's time zone, or the browser's in the
// combined view (no machine). Live: workspace.switch.* and workspace.heartbeat.* from /ws
// close, open and grow blocks in place; nothing reloads and nothing polls.

import { byHost, fetchIntervals, fetchMachines } from "./deskapi.js";
import { timeGrid, firstHour } from "./deskgrid.js";
import { monthGrid } from "./deskmonth.js";
import { NowStrip } from "./desknow.js";
import { totalsPanel } from "./desktotals.js";
import { Toolbar } from "./desktoolbar.js";
import "./desk.css";
import { h, setText } from "./dom.js";
import { forget, markDirty } from "./schedule.js";
import { clock } from "./store.js";
import { Timeline, layout } from "./timeline.js";
import {
  addDays,
  dayKeyOf,
  dayStart,
  localZone,
  periodTitle,
  stepKey,
  validDayKey,
  validZone,
  viewDays,
} from "./tz.js";

const PATH = "/deskmeter";
const VIEWS = new Set(["day", "week", "month"]);
const PX_PER_HOUR = { day: 48, week: 40 };

/** The page state in a URL's query: {view, date ("" = today), machine ("" = combined)}. */
export function stateFromUrl(search) {
  const q = new URLSearchParams(search);
  const view = VIEWS.has(q.get("view")) ? q.get("view") : "week";
  const date = validDayKey(q.get("date")) ? q.get("date") : "";
  return { view, date, machine: q.get("machine") || "" };
}

function urlOf(state) {
  const q = new URLSearchParams();
  q.set("view", state.view);
  if (state.date) q.set("date", state.date);
  if (state.machine) q.set("machine", state.machine);
  return `${PATH}?${q}`;
}

export class DeskmeterPage {
  constructor() {
    this.state = stateFromUrl(location.search);
    this.machines = new Map();
    this.timeline = null;
    this.pending = []; // bus payloads that arrive while the range loads
    this.token = 0;
    this.scrolled = false;
  }

  patterns() {
    return ["workspace.switch.*", "workspace.heartbeat.*"];
  }

  mount(root) {
    document.title = "sysmonstm · deskmeter";
    // the header's host filter and chart ranges mean nothing here
    const header = document.querySelectorAll(".top .ranges, .top .filter");
    this.hidden = [...header].filter((el) => !el.hidden);
    for (const el of this.hidden) el.hidden = true;
    this.now = new NowStrip((id) => urlOf({ ...this.state, machine: id }));
    this.toolbar = new Toolbar((patch) => this.choose(patch));
    this.zoneNote = h("p", { class: "muted dm-zone" });
    this.status = h("p", { class: "muted dm-status" }, "Loading…");
    this.scroller = h("div", { class: "tg-scroll" });
    this.lanesNote = h("p", { class: "muted dm-lanes" });
    this.calendar = h("div", { class: "dm-calendar", id: "dm-calendar" });
    this.totals = h("div", { class: "dm-totals-slot" });
    this.el = h(
      "section",
      { class: "desk-page", onclick: (ev) => this.onClick(ev) },
      h("div", { class: "dm-title" }, h("h1", {}, "Deskmeter"), this.zoneNote),
      this.now.el,
      this.toolbar.el,
      this.status,
      h("div", { class: "dm-body" }, this.calendar, this.totals),
    );
    root.replaceChildren(this.el);
    this.ticker = setInterval(() => markDirty(this), 60_000); // the "now" line moves
    this.start();
  }

  async start() {
    try {
      for (const m of await fetchMachines()) this.machines.set(m.id, m);
    } catch (err) {
      this.fail(err);
    }
    if (this.gone) return;
    this.refreshMachines();
    await this.load();
  }

  /** The zone the calendar is drawn in: the chosen machine's, else this browser's. */
  zone() {
    const m = this.machines.get(this.state.machine);
    return m && validZone(m.zone) ? m.zone : localZone();
  }

  period() {
    const tz = this.zone();
    const date = this.state.date || dayKeyOf(clock.now(), tz);
    const days = viewDays(this.state.view, date);
    const from = dayStart(days[0], tz);
    const to = dayStart(addDays(days[days.length - 1], 1), tz);
    return { tz, date, days, from, to };
  }

  /**
   * Read the state's period, then show it. What is on screen stays until the new range
   * arrives; bus payloads of the meantime wait in `pending` and apply on top of it.
   */
  async load() {
    const token = ++this.token;
    const p = { ...this.state, ...this.period() };
    const next = new Timeline(p.from, p.to);
    this.pending = [];
    this.status.hidden = false;
    this.status.classList.remove("error");
    setText(this.status, "Loading…");
    try {
      const list = await fetchIntervals(p.from, p.to, p.machine);
      if (token !== this.token) return;
      next.reset(list);
      for (const payload of this.pending) next.applyEvent(payload);
      this.pending = null;
      this.timeline = next;
      this.loaded = p;
      this.scrolled = false;
      this.status.hidden = true;
      this.render();
    } catch (err) {
      if (token === this.token) this.fail(err);
    }
  }

  fail(err) {
    this.status.hidden = false;
    this.status.classList.add("error");
    setText(this.status, `Could not load Deskmeter data: ${err.message}`);
  }

  /** A toolbar choice: change the state, put it in the URL (history), load the new range. */
  choose(patch) {
    const next = { ...this.state };
    if (patch.view) next.view = patch.view;
    if (patch.machine !== undefined) next.machine = patch.machine;
    if (patch.today) next.date = "";
    if (patch.step) next.date = stepKey(next.view, this.period().date, patch.step);
    this.go(next);
  }

  go(next) {
    const url = urlOf(next);
    if (url !== location.pathname + location.search) history.pushState({}, "", url);
    this.state = next;
    this.refreshMachines();
    this.load();
  }

  /** Links inside the page (a day, a machine) change the state without a page load. */
  onClick(ev) {
    const a = ev.target.closest("a[href]");
    if (!a || a.target || a.hasAttribute("download")) return;
    if (ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname !== PATH) return;
    ev.preventDefault();
    this.go(stateFromUrl(url.search));
  }

  dayHref(key) {
    return urlOf({ ...this.state, view: "day", date: key });
  }

  /** One envelope from /ws (main.js hands over the patterns of `patterns()`). */
  onEnvelope(env) {
    const p = env.payload;
    if (!p || typeof p.machine !== "string" || !p.current) return;
    const zoneBefore = this.zone();
    this.track(p);
    this.refreshMachines();
    if (this.zone() !== zoneBefore) {
      this.load(); // the chosen machine's zone just became known: redraw in it
      return;
    }
    if (this.state.machine && p.machine !== this.state.machine) return;
    if (this.pending) this.pending.push(p);
    else if (this.timeline.applyEvent(p)) {
      if (p.kind === "switch") this.flush(); // a new block shows at once
      else markDirty(this);
    }
  }

  /** Keep the machine's identity and current interval from a bus payload. */
  track(p) {
    let m = this.machines.get(p.machine);
    if (!m) {
      const host = p.host || p.machine;
      m = { id: p.machine, host, zone: p.time_zone || "UTC", current: null, lastSeen: 0 };
      this.machines.set(m.id, m);
    }
    if (p.host) m.host = p.host;
    if (p.time_zone) m.zone = p.time_zone;
    if (p.time_ms >= m.lastSeen) {
      m.lastSeen = p.time_ms;
      m.current = {
        machine: p.machine,
        start: Number(p.current.start_ms),
        end: Number(p.time_ms),
        task: p.task ?? "",
        workspace: p.workspace ?? "",
        workspaceIndex: p.workspace_index ?? null,
        idle: Boolean(p.idle),
        open: true,
      };
    }
  }

  hostOf(id) {
    return this.machines.get(id)?.host || id;
  }

  sortedMachines() {
    return [...this.machines.values()].sort(byHost);
  }

  refreshMachines() {
    const names = new Set();
    for (const m of this.machines.values()) if (m.current) names.add(m.current.task);
    if (this.timeline) for (const iv of this.timeline.items.values()) names.add(iv.task);
    this.now.update(this.sortedMachines(), names);
  }

  flush() {
    this.render();
  }

  /** Draw the loaded range: toolbar, calendar, totals (all from one layout). */
  render() {
    const p = this.loaded;
    if (!p) return;
    const { machine, view } = p;
    const combined = !machine;
    const hostOf = (id) => this.hostOf(id);
    const intervals = this.timeline.list(machine);
    const lay = layout(intervals, p.days, p.tz);
    const byName = (a, b) => hostOf(a).localeCompare(hostOf(b)) || a.localeCompare(b);
    const seen = [...new Set(intervals.map((iv) => iv.machine))];
    const lanes = combined ? seen.sort(byName) : [machine];
    const title = periodTitle(view, p.days);
    const machines = this.sortedMachines();
    this.toolbar.update({ view, title, machine, machines, from: p.from, to: p.to });
    const whose = combined ? "this browser's zone" : `${hostOf(machine)}'s zone`;
    setText(this.zoneNote, `Times in ${p.tz} (${whose})`);
    // the range on screen, for tools and tests: exactly what the totals cover
    Object.assign(this.calendar.dataset, { view, from: p.from, to: p.to, zone: p.tz, machine });
    const today = dayKeyOf(clock.now(), p.tz);
    const dayHref = (k) => this.dayHref(k);
    const opts = { lay, tz: p.tz, lanes, hostOf, today, now: clock.now(), dayHref };
    if (view === "month") {
      this.calendar.replaceChildren(monthGrid(opts));
    } else {
      const px = PX_PER_HOUR[view];
      const grid = timeGrid(opts);
      grid.style.setProperty("--tg-height", `${24 * px}px`);
      this.scroller.replaceChildren(grid);
      // re-attaching the scroller would lose its scroll position: only when coming from a month
      if (this.scroller.parentNode !== this.calendar) {
        this.calendar.replaceChildren(this.lanesNote, this.scroller);
      }
      if (!this.scrolled) {
        this.scrolled = true;
        this.scroller.scrollTop = firstHour(lay, p.tz) * px;
      }
    }
    const laned = combined && lanes.length > 1 && view === "week";
    this.lanesNote.hidden = !laned;
    const order = lanes.map(hostOf).join(" · ");
    setText(this.lanesNote, laned ? `Lanes in each day, left to right: ${order}` : "");
    this.totals.replaceChildren(totalsPanel(lay, { combined, hostOf }));
    this.refreshMachines();
  }

  unmount() {
    this.gone = true;
    this.token += 1; // answers still on their way are dropped
    forget(this);
    clearInterval(this.ticker);
    this.now.destroy();
    for (const el of this.hidden) el.hidden = false;
  }
}
