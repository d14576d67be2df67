// Calendar arithmetic in an IANA time zone with nothing but Intl: local days, their real
// bounds in UTC milliseconds (23 h and 25 h on DST days), wall-clock positions and labels.
// A "day key" is a local calendar date as "YYYY-MM-DD"; keys compare as strings.

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const formatters = new Map();

/** The browser's own zone (the combined view draws in it). */
export function localZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Whether `tz` is a zone this browser knows. */
export function validZone(tz) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function partsFormatter(tz) {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Local wall-clock fields of `ms` in `tz`: {year, month (1-12), day, hour, minute, second}. */
export function wallParts(ms, tz) {
  const out = {};
  for (const p of partsFormatter(tz).formatToParts(ms)) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  if (out.hour === 24) out.hour = 0; // older engines write midnight as 24 despite h23
  return out;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

function keyOfParts(p) {
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
}

/** The local date of `ms` in `tz` as a day key. */
export function dayKeyOf(ms, tz) {
  return keyOfParts(wallParts(ms, tz));
}

function keyUtcMs(key) {
  const [y, m, d] = key.split("-").map(Number);
  return Date.UTC(y, m - 1, d);
}

function keyOfUtcMs(ms) {
  const d = new Date(ms);
  return keyOfParts({ year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() });
}

/** Whether `key` is a real calendar date written as YYYY-MM-DD. */
export function validDayKey(key) {
  return (
    typeof key === "string" && /^\d{4}-\d{2}-\d{2}$/.test(key) && keyOfUtcMs(keyUtcMs(key)) === key
  );
}

/** The day key `n` calendar days after `key` (n may be negative). */
export function addDays(key, n) {
  return keyOfUtcMs(keyUtcMs(key) + n * DAY_MS);
}

/** 0 = Monday … 6 = Sunday (ISO weeks start on Monday). */
export function isoWeekday(key) {
  return (new Date(keyUtcMs(key)).getUTCDay() + 6) % 7;
}

/** The first instant (UTC ms) of local day `key` in `tz`. */
export function dayStart(key, tz) {
  // Guess with the zone's offset near that midnight; verify; else search: midnight may be
  // skipped by a DST change (the day then starts at the change, e.g. 01:00).
  const naive = keyUtcMs(key);
  const offset = (t) => {
    const p = wallParts(t, tz);
    const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
    return wall - Math.floor(t / 1000) * 1000;
  };
  const starts = (t) => dayKeyOf(t, tz) === key && dayKeyOf(t - 1, tz) < key;
  for (const probe of [naive, naive - offset(naive)]) {
    let guess = naive - offset(probe);
    if (!starts(guess)) continue;
    // a midnight repeated by a DST change: the day starts at its first occurrence
    while (starts(guess - HOUR_MS)) guess -= HOUR_MS;
    return guess;
  }
  let lo = naive - 15 * HOUR_MS; // before the day in every zone (offsets are within ±14 h)
  let hi = naive + 15 * HOUR_MS; // inside or after it
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayKeyOf(mid, tz) >= key) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** [start, end) in UTC ms of local day `key` in `tz`. */
export function dayBounds(key, tz) {
  return [dayStart(key, tz), dayStart(addDays(key, 1), tz)];
}

/**
 * Hours since local midnight on the wall clock (0 ≤ h < 24): where `ms` sits on a 24-hour
 * calendar axis. On a DST day the skipped hour is empty and the repeated hour overlaps.
 */
export function wallHours(ms, tz) {
  const p = wallParts(ms, tz);
  return p.hour + p.minute / 60 + (p.second + (((ms % 1000) + 1000) % 1000) / 1000) / 3600;
}

/** The days shown by a view ("day", "week" or "month") around day `key`. */
export function viewDays(view, key) {
  if (view === "day") return [key];
  if (view === "week") {
    const first = addDays(key, -isoWeekday(key));
    return Array.from({ length: 7 }, (_, i) => addDays(first, i));
  }
  const first = `${key.slice(0, 8)}01`;
  const out = [];
  for (let d = first; d.slice(0, 7) === first.slice(0, 7); d = addDays(d, 1)) out.push(d);
  return out;
}

/** The key one view-step before (-1) or after (+1) `key`: a day, a week or a month. */
export function stepKey(view, key, dir) {
  if (view === "day") return addDays(key, dir);
  if (view === "week") return addDays(key, 7 * dir);
  const [y, m] = key.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1 + dir, 1));
  return keyOfParts({ year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: 1 });
}

/** "14:03" on the wall clock of `tz`. */
export function clockText(ms, tz) {
  const p = wallParts(ms, tz);
  return `${pad(p.hour)}:${pad(p.minute)}`;
}

/** A date label for a day key, e.g. "Mon 30 Nov" (`opts` are Intl date options). */
export function dayLabel(key, opts = { weekday: "short", day: "numeric", month: "short" }) {
  return new Intl.DateTimeFormat(undefined, { ...opts, timeZone: "UTC" }).format(keyUtcMs(key));
}

/** The title of a view's period: "Saturday 5 December 2026", "30 Nov – 6 Dec 2026", … */
export function periodTitle(view, days) {
  if (view === "day") {
    return dayLabel(days[0], { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  }
  if (view === "month") return dayLabel(days[0], { month: "long", year: "numeric" });
  const first = dayLabel(days[0], { day: "numeric", month: "short" });
  const last = dayLabel(days[days.length - 1], { day: "numeric", month: "short", year: "numeric" });
  return `${first} – ${last}`;
}
