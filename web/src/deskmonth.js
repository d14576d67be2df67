// The month view: a Monday-first calendar of the month's days; each day shows its total, a
// 24-hour strip of task blocks per machine and its top tasks. A day links to its day view.

import { blockEl } from "./deskblock.js";
import { formatHm } from "./deskformat.js";
import { dayTotalEl } from "./deskgrid.js";
import { h } from "./dom.js";
import { ranked } from "./timeline.js";
import { taskName, taskStyle } from "./taskcolor.js";
import { addDays, dayLabel, isoWeekday, wallHours } from "./tz.js";

const HOUR_MS = 3_600_000;
const TOP_TASKS = 3;

function horizontal(piece, day, tz) {
  const left = wallHours(piece.start, tz);
  let right = piece.end >= day.to ? 24 : wallHours(piece.end, tz);
  if (right < left) right = Math.min(24, left + (piece.end - piece.start) / HOUR_MS);
  return `left: ${(left / 24) * 100}%; width: ${((right - left) / 24) * 100}%`;
}

function strip(day, machine, { tz, lanes, hostOf }) {
  const title = lanes.length > 1 ? hostOf(machine) : null;
  const el = h("div", { class: "mv-strip", dataset: { machine }, title });
  for (const piece of day.pieces) {
    if (piece.iv.machine !== machine) continue;
    el.append(blockEl(piece, tz, hostOf, horizontal(piece, day, tz), { label: false }));
  }
  return el;
}

function topTasks(day) {
  const rows = ranked(day.byTask)
    .filter((t) => t.active > 0)
    .slice(0, TOP_TASKS)
    .map((t) =>
      h(
        "li",
        taskStyle(t.key),
        h("span", { class: "swatch" }),
        h("span", { class: "mv-task-name" }, taskName(t.key)),
        h("span", { class: "mv-task-time" }, formatHm(t.active / 1000)),
      ),
    );
  return rows.length ? h("ul", { class: "mv-tasks" }, rows) : null;
}

function dayCell(day, o) {
  const full = dayLabel(day.key, { dateStyle: "full" });
  const date = String(Number(day.key.slice(8)));
  return h(
    "div",
    {
      class: ["mv-cell", day.key === o.today && "today", day.key > o.today && "future"]
        .filter(Boolean)
        .join(" "),
      dataset: { day: day.key },
    },
    h(
      "div",
      { class: "mv-cell-head" },
      h("a", { href: o.dayHref(day.key), class: "mv-date", title: full }, date),
      dayTotalEl(day, "mv-total"),
    ),
    h("div", { class: "mv-strips" }, o.lanes.map((m) => strip(day, m, o))),
    topTasks(day),
  );
}

const filler = () => h("div", { class: "mv-cell out", "aria-hidden": "true" });

/**
 * The month grid for `lay.days` (the days of one month, in order).
 * @param {object} o {lay, tz, lanes: [machine id], hostOf, today, dayHref}
 */
export function monthGrid(o) {
  const names = Array.from({ length: 7 }, (_, i) =>
    h("div", { class: "mv-weekday" }, dayLabel(addDays("2024-01-01", i), { weekday: "short" })),
  );
  const cells = [];
  const lead = isoWeekday(o.lay.days[0].key); // 2024-01-01 above is a Monday
  for (let i = 0; i < lead; i += 1) cells.push(filler());
  for (const day of o.lay.days) cells.push(dayCell(day, o));
  while (cells.length % 7) cells.push(filler());
  return h(
    "div",
    { class: "mv" },
    h("div", { class: "mv-head" }, names),
    h("div", { class: "mv-grid" }, cells),
  );
}
