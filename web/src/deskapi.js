// REST client for /api/v1/deskmeter (docs/deskmeter.md "REST"), and the one place that turns
// its JSON into the page's records, so a renamed field is fixed here and nowhere else.

import { getJSON, requestJSON } from "./api.js";

const BASE = "/api/v1/deskmeter";

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

/**
 * An interval record: {machine, start, end, task, workspace, workspaceIndex, idle, open}
 * with times in UTC ms (`end` of an open interval is its last event).
 */
export function toInterval(raw) {
  return {
    machine: String(raw.machine ?? ""),
    start: Number(raw.start_ms),
    end: Number(raw.end_ms ?? raw.start_ms),
    task: raw.task ?? "",
    workspace: raw.workspace ?? "",
    workspaceIndex: raw.workspace_index ?? null,
    idle: Boolean(raw.idle),
    open: Boolean(raw.open),
  };
}

/** A machine record: {id, host, zone, current (interval or null), lastSeen (ms)}. */
export function toMachine(raw) {
  const id = String(raw.id ?? raw.machine);
  const current = raw.current ? toInterval({ machine: id, ...raw.current }) : null;
  if (current) current.open = true;
  return {
    id,
    host: raw.host || raw.hostname || id,
    zone: raw.time_zone || "UTC",
    current,
    lastSeen: Number(raw.last_seen_ms ?? raw.last_event_ms ?? current?.end ?? 0),
  };
}

/** Machines in display order: by host name, then id. */
export function byHost(a, b) {
  return a.host.localeCompare(b.host) || a.id.localeCompare(b.id);
}

/** Every machine Deskmeter has heard of. */
export async function fetchMachines() {
  const body = await getJSON(`${BASE}/machines`);
  const list = Array.isArray(body) ? body : body.machines || [];
  return list.map(toMachine);
}

const PAGE = 10_000;
const MAX_PAGES = 20;

/**
 * Intervals overlapping [from, to) (UTC ms), clipped to it; `machine` "" for every one.
 * A range with more than a page is read in pages, each from the last start seen; a page's
 * clipped copies of intervals already read (they overlap its start) are left out.
 */
export async function fetchIntervals(from, to, machine) {
  const out = [];
  const seen = new Set();
  const reached = new Map(); // machine -> latest end read so far
  let pageFrom = from;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const q = query({ from: pageFrom, to, machine, limit: PAGE });
    const body = await getJSON(`${BASE}/intervals${q}`);
    for (const iv of (body.intervals || []).map(toInterval)) {
      const key = `${iv.machine}\u0000${iv.start}`;
      // one machine's intervals never overlap: if one read already reaches past this
      // page's start, an interval "starting" there is its clipped copy
      const clippedCopy =
        page > 0 && iv.start === pageFrom && (reached.get(iv.machine) ?? -Infinity) > pageFrom;
      if (seen.has(key) || clippedCopy) continue;
      seen.add(key);
      out.push(iv);
      reached.set(iv.machine, Math.max(reached.get(iv.machine) ?? iv.end, iv.end));
    }
    const last = out[out.length - 1];
    if (!body.truncated || !last || last.start === pageFrom) break;
    pageFrom = last.start;
  }
  return out;
}

/** Totals over [from, to) grouped `by` task|workspace|machine|day: [{key, active_s, idle_s}]. */
export async function fetchSummary(from, to, by, machine) {
  const body = await getJSON(`${BASE}/summary${query({ from, to, by, machine })}`);
  return Array.isArray(body) ? body : body.totals || [];
}

/** Ask `machine`'s watcher to switch to `task` (answered 202 once published). */
export function putTask(machine, task) {
  return requestJSON("PUT", `${BASE}/task`, { machine, task });
}

/** The download URL of every interval in [from, to) as `format` (csv or json). */
export function exportUrl(from, to, machine, format) {
  return `${BASE}/export${query({ from, to, machine, format })}`;
}
