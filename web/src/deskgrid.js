// The day and week views: one column per local day on a 00-24 wall-clock axis, one lane per
// machine inside each column (the combined view), task blocks placed by local time. On a DST
// day the skipped hour stays empty and the repeated hour overlaps; durations and totals are
// always real elapsed time.

import { blockEl } from "./deskblock.js";
import { h } from "./dom.js";
import { formatDuration } from "./deskformat.js";
import { dayLabel, wallHours } from "./tz.js";

const HOUR_MS = 3_600_000;

/** Vertical span [top, bottom] in hours of a piece within its day. */
function verticalSpan(piece, day, tz) {
  const top = wallHours(piece.start, tz);
  let bottom = piece.end >= day.to ? 24 : wallHours(piece.end, tz);
  // a piece across a DST fall-back can end "before" it starts on the wall clock
  if (bottom < top) bottom = Math.min(24, top + (piece.end - piece.start) / HOUR_MS);
  return [top, bottom];
}

/** A day total element (`data-day-total` holds the day key, seconds in data attributes). */
export function dayTotalEl(day, cls) {
  return h(
    "span",
    {
      class: cls,
      title: day.idle ? `idle ${formatDuration(day.idle / 1000)} apart` : null,
      dataset: { dayTotal: day.key, activeS: day.active / 1000, idleS: day.idle / 1000 },
    },
    day.active || day.idle ? formatDuration(day.active / 1000) : "–",
  );
}

/**
 * The time grid for `lay.days` (one day or a week).
 * @param {object} o {lay, tz, lanes: [machine id], hostOf, today, now, dayHref}
 */
export function timeGrid({ lay, tz, lanes, hostOf, today, now, dayHref }) {
  const cols = lay.days.length;
  const columns = `grid-template-columns: 3.4rem repeat(${cols}, minmax(0, 1fr))`;
  const head = h("div", { class: "tg-head", style: columns }, h("div"));
  const body = h("div", { class: "tg-body", style: columns }, hourAxis());
  for (const day of lay.days) {
    head.append(dayHead(day, { lanes, hostOf, today, dayHref, single: cols === 1 }));
    body.append(dayColumn(day, { tz, lanes, hostOf, today, now }));
  }
  return h("div", { class: `tg ${cols === 1 ? "tg-single" : "tg-multi"}` }, head, body);
}

function hourAxis() {
  const axis = h("div", { class: "tg-axis", "aria-hidden": "true" });
  for (let hr = 1; hr < 24; hr += 1) {
    const label = `${String(hr).padStart(2, "0")}:00`;
    axis.append(h("span", { style: `top: ${(hr / 24) * 100}%` }, label));
  }
  return axis;
}

function dayHead(day, { lanes, hostOf, today, dayHref, single }) {
  const name = single
    ? dayLabel(day.key, { weekday: "long", day: "numeric", month: "long" })
    : dayLabel(day.key, { weekday: "short", day: "numeric" });
  const full = dayLabel(day.key, { dateStyle: "full" });
  return h(
    "div",
    { class: `tg-day-head${day.key === today ? " today" : ""}`, dataset: { day: day.key } },
    h("a", { href: dayHref(day.key), class: "tg-day-name", title: full }, name),
    dayTotalEl(day, "tg-day-total"),
    lanes.length > 1 && single
      ? h("div", { class: "tg-lane-names" }, lanes.map((m) => h("span", {}, hostOf(m))))
      : null,
  );
}

function dayColumn(day, { tz, lanes, hostOf, today, now }) {
  const laneEls = new Map(
    lanes.map((m) => [m, h("div", { class: "tg-lane", dataset: { machine: m } })]),
  );
  for (const piece of day.pieces) {
    const lane = laneEls.get(piece.iv.machine);
    if (!lane) continue;
    const [top, bottom] = verticalSpan(piece, day, tz);
    const pos = `top: ${(top / 24) * 100}%; height: ${((bottom - top) / 24) * 100}%`;
    lane.append(blockEl(piece, tz, hostOf, pos));
  }
  const col = h(
    "div",
    { class: `tg-col${day.key === today ? " today" : ""}`, dataset: { day: day.key } },
    ...laneEls.values(),
  );
  if (now >= day.from && now < day.to) {
    col.append(h("div", { class: "tg-now", style: `top: ${(wallHours(now, tz) / 24) * 100}%` }));
  }
  return col;
}

/** Where to scroll a time grid first: an hour before its earliest block, else 07:00. */
export function firstHour(lay, tz) {
  let first = 24;
  for (const day of lay.days) {
    for (const piece of day.pieces) first = Math.min(first, wallHours(piece.start, tz));
  }
  return Math.max(0, (first === 24 ? 8 : first) - 1);
}
