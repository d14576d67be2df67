// What the dashboard knows: hosts (from /api/v1/hosts and metrics events), active alerts
// (from /api/v1/alerts and alerts events) and the offset between this clock and the server's.

/** Server time estimate: Date.now() corrected by the last measured offset. */
export const clock = {
  offsetMs: 0,
  now() {
    return Date.now() - this.offsetMs;
  },
  observe(serverMs) {
    this.offsetMs = Date.now() - serverMs;
  },
};

class Emitter {
  constructor() {
    this.listeners = new Map();
  }
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }
  emit(name, ...args) {
    for (const fn of this.listeners.get(name) || []) fn(...args);
  }
}

/**
 * One host: identity, labels, latest value per series, and when it was last heard of.
 * `latest` maps a series key to {t, v}.
 */
export class Host {
  constructor(id) {
    this.id = id;
    this.hostname = id;
    this.labels = {};
    this.intervalMs = 1000;
    this.lastSeenMs = 0;
    this.latest = new Map();
  }

  get name() {
    return this.hostname || this.id;
  }

  /** Keys of the known series whose metric is `metric`. */
  keysOf(metric) {
    const out = [];
    for (const key of this.latest.keys()) {
      if (key === metric || key.startsWith(metric + "{")) out.push(key);
    }
    return out.sort();
  }
}

/** Emits "added" (host) when a host is first known and "metrics" (host, payload) per event. */
export class HostStore extends Emitter {
  constructor() {
    super();
    this.hosts = new Map();
  }

  get(id) {
    return this.hosts.get(id);
  }

  ensure(id) {
    let host = this.hosts.get(id);
    if (!host) {
      host = new Host(id);
      this.hosts.set(id, host);
      return [host, true];
    }
    return [host, false];
  }

  /** Merge a host object from the REST API (list or detail). */
  applyRest(h) {
    const [host, isNew] = this.ensure(h.id);
    host.hostname = h.hostname || host.hostname;
    host.labels = h.labels || host.labels;
    host.intervalMs = h.interval_ms || host.intervalMs;
    if (h.last_seen_ms > host.lastSeenMs) host.lastSeenMs = h.last_seen_ms;
    for (const [key, tv] of Object.entries(h.values || {})) {
      const cur = host.latest.get(key);
      if (!cur || tv.t >= cur.t) host.latest.set(key, { t: tv.t, v: tv.v });
    }
    if (isNew) this.emit("added", host);
    else this.emit("updated", host);
    return host;
  }

  /** Apply one `metrics.*` event payload. */
  applyMetrics(p) {
    if (!p || typeof p.source !== "string" || !Array.isArray(p.series)) return;
    const [host, isNew] = this.ensure(p.source);
    if (p.host) host.hostname = p.host;
    if (p.labels) host.labels = p.labels;
    if (p.interval_ms) host.intervalMs = p.interval_ms;
    const times = p.times_ms || [];
    const rows = p.values || [];
    if (times.length) {
      const last = times.length - 1;
      const t = times[last];
      if (t >= host.lastSeenMs) {
        host.lastSeenMs = t;
        const row = rows[last] || [];
        p.series.forEach((key, j) => host.latest.set(key, { t, v: row[j] }));
      }
    }
    if (isNew) this.emit("added", host);
    this.emit("metrics", host, p);
  }
}

const ENDED = new Set(["resolved", "cancelled"]);

/** Active alerts by instance id; emits "changed" after every update. */
export class AlertStore extends Emitter {
  constructor() {
    super();
    this.active = new Map();
  }

  reset(list) {
    this.active = new Map(list.map((a) => [a.id, a]));
    this.emit("changed");
  }

  apply(alert) {
    if (!alert || !alert.id) return;
    const cur = this.active.get(alert.id);
    if (cur && (cur.time_ms || 0) > (alert.time_ms || 0)) return;
    if (ENDED.has(alert.state)) this.active.delete(alert.id);
    else this.active.set(alert.id, alert);
    this.emit("changed");
  }

  /** Active alerts, firing before pending, most severe first, then newest first. */
  sorted(filter = () => true) {
    const rank = { critical: 0, warning: 1, info: 2, success: 3 };
    return [...this.active.values()].filter(filter).sort(
      (a, b) =>
        (a.state === "firing" ? 0 : 1) - (b.state === "firing" ? 0 : 1) ||
        (rank[a.severity] ?? 9) - (rank[b.severity] ?? 9) ||
        (b.started_ms || 0) - (a.started_ms || 0),
    );
  }
}

/**
 * Whether an alert concerns a host: its key is the host's id (or `<id>|<tags>`, the rules
 * engine's observation key), or its group or labels name the host's id or hostname.
 */
export function alertConcerns(alert, host) {
  const key = String(alert.key || "");
  if (key === host.id || key.startsWith(`${host.id}|`)) return true;
  const names = new Set([host.id, host.hostname]);
  const bags = [alert.group || {}, alert.labels || {}];
  for (const bag of bags) {
    for (const k of ["source", "host", "machine_id", "hostname"]) {
      if (bag[k] !== undefined && names.has(String(bag[k]))) return true;
    }
  }
  return false;
}
