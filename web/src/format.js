// Units and number formatting, keyed by metric name (the part of a series key before "{").

const IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** The metric name of a canonical series key: `disk.used_pct{mount="/"}` -> `disk.used_pct`. */
export function metricOf(key) {
  const brace = key.indexOf("{");
  return brace < 0 ? key : key.slice(0, brace);
}

/** The tags of a canonical series key as [name, value] pairs (values unescaped). */
export function tagsOf(key) {
  const brace = key.indexOf("{");
  if (brace < 0) return [];
  const out = [];
  const re = /([a-zA-Z_][a-zA-Z0-9_.]*)="((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(key.slice(brace + 1, -1)))) {
    out.push([m[1], m[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c))]);
  }
  return out;
}

/** "mount=/ · cpu=0" style text for a series' tags ("" when it has none). */
export function tagText(key) {
  return tagsOf(key).map(([k, v]) => `${k}=${v}`).join(" · ");
}

/** What kind of quantity a metric is: pct, bytes, rate_bytes, rate, celsius, count, plain. */
export function kindOf(metric) {
  if (metric.startsWith("cpu.") || metric.endsWith("_pct")) return "pct";
  if (metric.endsWith("_bps")) return "rate_bytes";
  if (metric.endsWith("_bytes")) return "bytes";
  if (/_(iops|pps|ps)$/.test(metric)) return "rate";
  if (metric.endsWith(".celsius")) return "celsius";
  if (metric.endsWith(".count")) return "count";
  return "plain";
}

function scaled(v, steps, base) {
  let i = 0;
  let x = Math.abs(v);
  while (x >= base && i < steps.length - 1) {
    x /= base;
    i += 1;
  }
  const n = Math.sign(v) * x;
  const digits = x >= 100 || i === 0 ? 0 : x >= 10 ? 1 : 2;
  return [n.toFixed(digits), steps[i]];
}

/**
 * [text, unit] for a value of a metric: the text is the number alone (what `data-metric`
 * elements show), the unit goes beside it. Missing values give ["–", ""].
 */
export function formatValue(metric, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return ["–", ""];
  switch (kindOf(metric)) {
    case "pct":
      return [v.toFixed(1), "%"];
    case "bytes":
      return scaled(v, IEC, 1024);
    case "rate_bytes": {
      const [t, u] = scaled(v, IEC, 1024);
      return [t, `${u}/s`];
    }
    case "rate":
      return [v >= 100 ? v.toFixed(0) : v.toFixed(1), "/s"];
    case "celsius":
      return [v.toFixed(1), "°C"];
    case "count":
      return [Math.round(v).toString(), ""];
    default:
      return [Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2), ""];
  }
}

/** A short axis label for a value (number and unit together). */
export function axisValue(metric, v) {
  if (v === null || v === undefined) return "";
  const [t, u] = formatValue(metric, v);
  return u === "%" ? `${Number(t).toFixed(0)}%` : `${t}${u ? " " + u : ""}`;
}

/** "4 s", "3 min", "2 h", "5 d" for a duration in milliseconds. */
export function formatAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** Local wall-clock time for Unix ms ("14:03:12", with the date when not today). */
export function formatTime(ms) {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}
