// The calendar's controls: day / week / month, previous / today / next, the period's title,
// the machine filter (one machine, or all of them combined) and the export links of the
// visible range. It only reports choices; the page owns the state.

import { exportUrl } from "./deskapi.js";
import { h, setText } from "./dom.js";

const VIEWS = [
  ["day", "Day"],
  ["week", "Week"],
  ["month", "Month"],
];

function stepButton(text, title, step, onclick) {
  return h("button", { type: "button", title, dataset: { step }, onclick }, text);
}

export class Toolbar {
  /** @param {(patch: {view?, step?, today?, machine?}) => void} onChoose */
  constructor(onChoose) {
    this.viewButtons = VIEWS.map(([view, label]) =>
      h("button", { type: "button", dataset: { view }, onclick: () => onChoose({ view }) }, label),
    );
    this.title = h("h2", { class: "dm-period" });
    this.select = h("select", {
      id: "dm-machine",
      "aria-label": "Machine",
      onchange: () => onChoose({ machine: this.select.value }),
    });
    this.csv = h("a", { class: "button", dataset: { export: "csv" }, download: "" }, "CSV");
    this.json = h("a", { class: "button", dataset: { export: "json" }, download: "" }, "JSON");
    this.el = h(
      "div",
      { class: "dm-toolbar" },
      h("div", { class: "seg", role: "group", "aria-label": "View" }, this.viewButtons),
      h(
        "div",
        { class: "seg", role: "group", "aria-label": "Period" },
        stepButton("‹", "Previous", "-1", () => onChoose({ step: -1 })),
        stepButton("Today", null, "0", () => onChoose({ today: true })),
        stepButton("›", "Next", "1", () => onChoose({ step: 1 })),
      ),
      this.title,
      h("label", { class: "dm-machine" }, h("span", { class: "muted" }, "Machine "), this.select),
      h(
        "span",
        { class: "dm-export" },
        h("span", { class: "muted" }, "Export "),
        this.csv,
        this.json,
      ),
    );
  }

  /** Show the state: view, period title, machines (by host) and the export range. */
  update({ view, title, machine, machines, from, to }) {
    for (const b of this.viewButtons) {
      b.setAttribute("aria-pressed", String(b.dataset.view === view));
    }
    setText(this.title, title);
    const options = [
      ["", "All machines (combined)"],
      ...machines.map((m) => [m.id, m.host === m.id ? m.id : `${m.host} (${m.id})`]),
    ];
    if (machine && !machines.some((m) => m.id === machine)) {
      options.push([machine, `${machine} (not seen)`]);
    }
    const sig = JSON.stringify(options);
    if (sig !== this.select.dataset.sig) {
      this.select.dataset.sig = sig;
      const els = options.map(([value, label]) => h("option", { value }, label));
      this.select.replaceChildren(...els);
    }
    this.select.value = machine;
    this.csv.href = exportUrl(from, to, machine, "csv");
    this.json.href = exportUrl(from, to, machine, "json");
  }
}
