// Lines of a chart are sums of series (one key, or e.g. every interface's rx rate). These
// helpers compute a line's value from a live event row and load its history over REST.

import { fetchSeries } from "./api.js";

/** Column index of each series key in a metrics payload. */
export function payloadIndex(payload) {
  return new Map(payload.series.map((k, j) => [k, j]));
}

/** Value of each line (a list of keys summed) in one payload row; null where none is there. */
export function lineValues(keys, index, row) {
  return keys.map((lineKeys) => {
    let sum = null;
    for (const key of lineKeys) {
      const j = index.get(key);
      if (j === undefined || row[j] == null) continue;
      sum = (sum ?? 0) + row[j];
    }
    return sum;
  });
}

/** Sum of the latest values of `keys` in a host (null when none is known). */
export function latestSum(host, keys) {
  let sum = null;
  for (const key of keys) {
    const tv = host.latest.get(key);
    if (tv && tv.v != null) sum = (sum ?? 0) + tv.v;
  }
  return sum;
}

/**
 * History of several lines, each the sum of its keys' averages per time, aligned on the union
 * of their times: `{t: ms[], cols: (number|null)[][], stepMs}`.
 */
export async function loadLines(hostId, keys, windowMs) {
  let stepMs = 0;
  const perLine = await Promise.all(
    keys.map(async (lineKeys) => {
      const sums = new Map();
      const parts = await Promise.all(lineKeys.map((k) => fetchSeries(hostId, k, windowMs)));
      for (const part of parts) {
        stepMs = Math.max(stepMs, part.step_ms || 0);
        part.t.forEach((t, i) => {
          const v = part.avg[i];
          if (v != null) sums.set(t, (sums.get(t) ?? 0) + v);
        });
      }
      return sums;
    }),
  );
  const times = new Set();
  for (const sums of perLine) for (const t of sums.keys()) times.add(t);
  const t = [...times].sort((a, b) => a - b);
  return { t, stepMs, cols: perLine.map((sums) => t.map((x) => sums.get(x) ?? null)) };
}
