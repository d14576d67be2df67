// The totals beside the calendar: the range's tracked and idle time, then per task and (in
// the combined view) per machine, largest first, with each one's share of the active time.

import { formatDuration, formatShare } from "./deskformat.js";
import { h } from "./dom.js";
import { ranked } from "./timeline.js";
import { taskName, taskStyle } from "./taskcolor.js";

/** Exact seconds for tests and tools: `data-active-s`, `data-idle-s`. */
const seconds = (t) => ({ activeS: t.active / 1000, idleS: t.idle / 1000 });

function row(total, whole, attrs, label, swatch) {
  const width = whole ? (100 * total.active) / whole : 0;
  const idle = total.idle ? `idle ${formatDuration(total.idle / 1000)}` : null;
  return h(
    "li",
    { ...attrs, class: ["dm-total-row", attrs.class].filter(Boolean).join(" ") },
    swatch,
    h("span", { class: "dm-total-name", title: label }, label),
    h("span", { class: "dm-total-time" }, formatDuration(total.active / 1000)),
    h("span", { class: "dm-total-share" }, formatShare(total.active, whole)),
    h(
      "span",
      { class: "dm-total-bar", "aria-hidden": "true" },
      h("span", { style: `width: ${width}%` }),
    ),
    idle ? h("span", { class: "dm-total-idle" }, idle) : null,
  );
}

/**
 * The totals panel for a layout (see timeline.layout). Rows carry `data-total-task` or
 * `data-total-machine` and exact `data-active-s` / `data-idle-s`.
 */
export function totalsPanel(lay, { combined, hostOf }) {
  const tasks = ranked(lay.byTask).map((t) => {
    const colour = taskStyle(t.key);
    const attrs = { ...colour, dataset: { totalTask: t.key, ...seconds(t) } };
    return row(t, lay.active, attrs, taskName(t.key), h("span", { class: "swatch" }));
  });
  const machines = combined
    ? ranked(lay.byMachine).map((t) =>
        row(t, lay.active, { dataset: { totalMachine: t.key, ...seconds(t) } }, hostOf(t.key)),
      )
    : [];
  const idle = lay.idle ? `+ ${formatDuration(lay.idle / 1000)} idle` : null;
  return h(
    "aside",
    { class: "dm-totals", "aria-label": "Totals" },
    h(
      "div",
      { class: "dm-range-total", dataset: { rangeTotal: "", ...seconds(lay) } },
      h("span", { class: "dm-big" }, formatDuration(lay.active / 1000)),
      h("span", { class: "muted" }, " tracked"),
      idle ? h("div", { class: "muted" }, idle) : null,
    ),
    h("h3", {}, "By task"),
    tasks.length
      ? h("ul", { class: "dm-total-list" }, tasks)
      : h("p", { class: "muted" }, "Nothing tracked in this range."),
    machines.length ? h("h3", {}, "By machine") : null,
    machines.length ? h("ul", { class: "dm-total-list" }, machines) : null,
  );
}
