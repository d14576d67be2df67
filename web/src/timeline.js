// The intervals of the range on screen, kept current by the bus, and what the calendar draws
// from them: pieces per local day and totals per day, task and machine. Every number on the
// page comes from here, so the blocks and the totals always agree.

import { dayBounds } from "./tz.js";

/**
 * Intervals overlapping [from, to), clipped to it, keyed by (machine, clipped start). The
 * REST answer seeds it; `workspace.switch.*` / `workspace.heartbeat.*` payloads
 * (docs/deskmeter.md "Bus") close, open and extend intervals in place.
 */
export class Timeline {
  constructor(from, to) {
    this.from = from;
    this.to = to;
    this.items = new Map();
  }

  reset(intervals) {
    this.items.clear();
    for (const iv of intervals) this.upsert(iv);
  }

  /** Add or extend an interval; false when it lies outside the range. */
  upsert(iv) {
    const start = Math.max(iv.start, this.from);
    const end = Math.min(iv.end, this.to);
    // a just-opened interval has no length yet, and is still worth a block
    if (start >= this.to || end < start || (end === start && !iv.open)) return false;
    const key = `${iv.machine}\u0000${start}`;
    const seen = this.items.get(key);
    this.items.set(key, { ...iv, start, end: seen ? Math.max(seen.end, end) : end });
    return true;
  }

  /**
   * Apply one bus payload: the interval it closed (a switch), then the machine's open
   * interval up to the event. Any other interval of that machine stops being open (the
   * aggregator may have closed it after a silence). True when something on screen changed.
   */
  applyEvent(p) {
    if (!p || typeof p.machine !== "string" || !p.current) return false;
    let changed = false;
    const current = {
      machine: p.machine,
      start: Number(p.current.start_ms),
      end: Number(p.time_ms),
      task: p.task ?? "",
      workspace: p.workspace ?? "",
      workspaceIndex: p.workspace_index ?? null,
      idle: Boolean(p.idle),
      open: true,
    };
    for (const [key, iv] of this.items) {
      if (iv.machine === p.machine && iv.open && iv.start < Math.max(current.start, this.from)) {
        this.items.set(key, { ...iv, open: false });
        changed = true;
      }
    }
    if (p.closed) {
      changed =
        this.upsert({
          machine: p.machine,
          start: Number(p.closed.start_ms),
          end: Number(p.closed.end_ms),
          task: p.closed.task ?? "",
          workspace: p.closed.workspace ?? "",
          workspaceIndex: p.closed.workspace_index ?? null,
          idle: Boolean(p.closed.idle),
          open: false,
        }) || changed;
    }
    return this.upsert(current) || changed;
  }

  /** The intervals of `machine` (every machine for ""), by start then machine. */
  list(machine = "") {
    const out = [];
    for (const iv of this.items.values()) if (!machine || iv.machine === machine) out.push(iv);
    return out.sort((a, b) => a.start - b.start || a.machine.localeCompare(b.machine));
  }
}

function addTo(map, key, iv, ms) {
  let t = map.get(key);
  if (!t) {
    t = { key, active: 0, idle: 0 };
    map.set(key, t);
  }
  if (iv.idle) t.idle += ms;
  else t.active += ms;
}

/** Totals of a map, largest active time first (then by name): [{key, active, idle}] in ms. */
export function ranked(map) {
  return [...map.values()].sort(
    (a, b) => b.active - a.active || b.idle - a.idle || a.key.localeCompare(b.key),
  );
}

/**
 * Cut `intervals` at the local days `days` (consecutive day keys) of zone `tz`. Returns
 * `{days: [{key, from, to, pieces, active, idle, byTask}], byTask, byMachine, active, idle}`
 * with times and totals in ms; a piece is `{iv, start, end}` within its day. The days
 * partition the range, so the day totals add up to the range totals exactly.
 */
export function layout(intervals, days, tz) {
  const out = { days: [], byTask: new Map(), byMachine: new Map(), active: 0, idle: 0 };
  for (const key of days) {
    const [from, to] = dayBounds(key, tz);
    out.days.push({ key, from, to, pieces: [], active: 0, idle: 0, byTask: new Map() });
  }
  for (const iv of intervals) {
    let i = firstDayEndingAfter(out.days, iv.start);
    for (; i < out.days.length && out.days[i].from <= iv.end; i += 1) {
      const day = out.days[i];
      const start = Math.max(iv.start, day.from);
      const end = Math.min(iv.end, day.to);
      if (end < start || (end === start && !(iv.open && iv.end === end && end < day.to))) continue;
      day.pieces.push({ iv, start, end });
      const ms = end - start;
      if (iv.idle) day.idle += ms;
      else day.active += ms;
      addTo(day.byTask, iv.task, iv, ms);
      addTo(out.byTask, iv.task, iv, ms);
      addTo(out.byMachine, iv.machine, iv, ms);
      if (iv.idle) out.idle += ms;
      else out.active += ms;
    }
  }
  return out;
}

function firstDayEndingAfter(days, t) {
  let lo = 0;
  let hi = days.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (days[mid].to <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
