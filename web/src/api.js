// REST client for /api/v1 (see docs/api.md). History reads go through a small limiter so a
// range change on a page of many charts never floods the gateway.

const MAX_IN_FLIGHT = 4;
let inFlight = 0;
const waiting = [];

async function limited(fn) {
  if (inFlight >= MAX_IN_FLIGHT) await new Promise((resolve) => waiting.push(resolve));
  inFlight += 1;
  try {
    return await fn();
  } finally {
    inFlight -= 1;
    const next = waiting.shift();
    if (next) next();
  }
}

/** An API error with the gateway's `{"error": {"code", "message"}}` body. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET `url` as JSON; an `ApiError` for any non-2xx answer. */
export function getJSON(url) {
  return requestJSON("GET", url);
}

/** `method` on `url` with an optional JSON body; the JSON answer, or an `ApiError`. */
export async function requestJSON(method, url, payload) {
  const init = { method, headers: { Accept: "application/json" } };
  if (payload !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  const res = await fetch(url, init);
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = body && body.error ? body.error : { code: "http", message: res.statusText };
    throw new ApiError(res.status, err.code, err.message);
  }
  return body;
}

export const fetchHosts = () => getJSON("/api/v1/hosts");

export const fetchHost = (id) => getJSON(`/api/v1/hosts/${encodeURIComponent(id)}`);

export const fetchAlerts = (historyLimit = 50) =>
  getJSON(`/api/v1/alerts?history_limit=${historyLimit}`);

/**
 * Columnar history of one series over the last `rangeMs` (relative to the server's now):
 * `{host, series, tier, step_ms, t, avg, min, max}`.
 */
export function fetchSeries(host, series, rangeMs, points = 1000) {
  const q = new URLSearchParams({
    host,
    series,
    from: `-${Math.round(rangeMs / 1000)}s`,
    to: "now",
    points: String(points),
  });
  return limited(() => getJSON(`/api/v1/series?${q}`));
}
