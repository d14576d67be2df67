// Durations the way people read time sheets: "2 h 05 min", "12 min", "40 s".

/** A duration in seconds as hours and minutes (seconds only under a minute). */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** A compact duration for small spaces: "2:05" (hours:minutes), "0:12". */
export function formatHm(seconds) {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}`;
}

/** A share as a whole percentage ("37 %"), "<1 %" for small non-zero parts. */
export function formatShare(part, whole) {
  if (!whole || part <= 0) return "0 %";
  const pct = (100 * part) / whole;
  return pct < 1 ? "<1 %" : `${Math.round(pct)} %`;
}
