// The per-host page at /host/<id>: labels, the host's alerts and one live chart for every
// series it has, grouped by family (the metric's first token: cpu, mem, disk, net ...).

import { fetchAlerts, fetchHost, fetchSeries } from "./api.js";
import { activeAlertsPanel, historyList } from "./alertsview.js";
import { TimeChart } from "./charts.js";
import { h, labelChips, setText, valueCell } from "./dom.js";
import { formatAge, formatTime, formatValue, metricOf, tagText } from "./format.js";
import { range } from "./range.js";
import { markDirty } from "./schedule.js";
import { alertConcerns, clock } from "./store.js";
import { topicToken } from "./ws.js";

const FAMILY_TITLES = {
  cpu: "CPU",
  load: "Load",
  mem: "Memory",
  swap: "Swap",
  disk: "Disk",
  net: "Network",
  proc: "Processes",
  temp: "Temperature",
};
const FAMILY_ORDER = Object.keys(FAMILY_TITLES);
const collator = new Intl.Collator(undefined, { numeric: true });

function familyOf(key) {
  return metricOf(key).split(".")[0];
}

/** Host-wide series (no tags) first, then by key with numbers in natural order. */
function seriesOrder(a, b) {
  const tagged = (k) => (k.includes("{") ? 1 : 0);
  return tagged(a) - tagged(b) || collator.compare(a, b);
}

function familyRank(name) {
  const i = FAMILY_ORDER.indexOf(name);
  return i < 0 ? FAMILY_ORDER.length : i;
}

export class HostPage {
  constructor({ hosts, alerts }, id) {
    this.hosts = hosts;
    this.alerts = alerts;
    this.id = id;
    this.charts = new Map();
    this.families = new Map();
    this.offs = [];
    this.offscreenOk = true;
  }

  patterns() {
    return [`metrics.${topicToken(this.id)}`];
  }

  mount(root) {
    this.root = root;
    document.title = `sysmonstm · ${this.id}`;
    this.title = h("h1", {}, this.id);
    this.meta = h("p", { class: "muted host-meta" });
    this.chips = h("div", { class: "chips" });
    this.familiesEl = h("div", { class: "families" });
    this.historySlot = h("div", { class: "history-slot" });
    this.status = h("p", { class: "muted" }, "Loading…");
    const concerns = (a) => {
      const host = this.hosts.get(this.id);
      return host ? alertConcerns(a, host) : false;
    };
    this.alertsPanel = activeAlertsPanel(this.alerts, concerns, "Active alerts on this host");
    root.replaceChildren(
      h(
        "section",
        { class: "host-page", dataset: { hostPage: this.id } },
        h("a", { href: "/", class: "back" }, "← all hosts"),
        this.title,
        this.chips,
        this.meta,
        this.alertsPanel.el,
        this.historySlot,
        this.status,
        this.familiesEl,
      ),
    );
    this.offs.push(
      this.hosts.on("metrics", (host, payload) => this.onMetrics(host, payload)),
      range.onChange(() => {
        for (const chart of this.charts.values()) chart.chart.setWindow(range.ms);
      }),
    );
    this.timer = setInterval(() => markDirty(this), 1000);
    this.load();
  }

  async load() {
    try {
      const body = await fetchHost(this.id);
      const host = this.hosts.applyRest(body);
      for (const key of body.series || []) this.addChart(key);
      for (const key of host.latest.keys()) this.addChart(key);
      this.status.hidden = true;
      markDirty(this);
      this.alerts.emit("changed");
      const alerts = await fetchAlerts(200);
      const mine = (alerts.history || []).filter((a) => alertConcerns(a, host));
      this.historySlot.replaceChildren(historyList(mine, "Alert history of this host"));
    } catch (err) {
      const unknown = err.status === 404;
      this.status.classList.add("error");
      setText(this.status, unknown ? `Unknown host: ${err.message}` : `Failed: ${err.message}`);
    }
  }

  familySection(family) {
    let section = this.families.get(family);
    if (section) return section;
    const grid = h("div", { class: "series-grid" });
    const el = h(
      "section",
      { class: "family", dataset: { family } },
      h("h2", {}, FAMILY_TITLES[family] || family),
      grid,
    );
    section = { el, grid };
    this.families.set(family, section);
    const after = [...this.familiesEl.children].find(
      (other) =>
        familyRank(other.dataset.family) > familyRank(family) ||
        (familyRank(other.dataset.family) === familyRank(family) &&
          other.dataset.family > family),
    );
    this.familiesEl.insertBefore(el, after ?? null);
    return section;
  }

  addChart(key) {
    if (this.charts.has(key)) return;
    const metric = metricOf(key);
    const tags = tagText(key);
    const reading = valueCell({ dataset: { metric: key } });
    const plotEl = h("div", { class: "plot" });
    const el = h(
      "figure",
      { class: "series-card", dataset: { series: key } },
      h(
        "figcaption",
        { class: "panel-head" },
        h("span", { class: "panel-title" }, metric, tags ? h("span", { class: "tags" }, ` ${tags}`) : ""),
        reading.el,
      ),
      plotEl,
    );
    const id = this.id;
    const chart = new TimeChart(plotEl, range.ms, {
      metric,
      mini: false,
      height: 140,
      lines: [{ label: tags || metric }],
      intervalMs: () => this.hosts.get(id)?.intervalMs ?? 1000,
      load: async (windowMs) => {
        const s = await fetchSeries(id, key, windowMs);
        return { t: s.t, cols: [s.avg], stepMs: s.step_ms };
      },
    });
    this.charts.set(key, { el, chart, reading, metric });
    const { grid } = this.familySection(familyOf(key));
    const after = [...grid.children].find((other) => seriesOrder(other.dataset.series, key) > 0);
    grid.insertBefore(el, after ?? null);
  }

  onMetrics(host, payload) {
    if (host.id !== this.id) return;
    payload.series.forEach((key, j) => {
      this.addChart(key);
      const { chart } = this.charts.get(key);
      payload.times_ms.forEach((t, r) => {
        const v = (payload.values[r] || [])[j];
        if (v != null) chart.append(t, [v]);
      });
    });
    this.status.hidden = true;
    markDirty(this);
  }

  /** Text refresh (scheduled): header and every chart's current value. */
  flush() {
    const host = this.hosts.get(this.id);
    if (!host) return;
    setText(this.title, host.name);
    const sig = JSON.stringify(host.labels);
    if (sig !== this.chips.dataset.sig) {
      this.chips.dataset.sig = sig;
      this.chips.replaceChildren(...labelChips(host.labels));
    }
    const age = host.lastSeenMs ? formatAge(clock.now() - host.lastSeenMs) : "never";
    const seen = host.lastSeenMs ? ` (${formatTime(host.lastSeenMs)})` : "";
    setText(this.meta, `id ${host.id} · every ${host.intervalMs / 1000} s · last sample ${age} ago${seen}`);
    for (const [key, { reading, metric }] of this.charts) {
      const tv = host.latest.get(key);
      const [text, unit] = formatValue(metric, tv ? tv.v : null);
      setText(reading.value, text);
      setText(reading.unit, unit);
    }
  }

  unmount() {
    for (const off of this.offs) off();
    clearInterval(this.timer);
    this.alertsPanel.destroy();
    for (const { chart } of this.charts.values()) chart.destroy();
    this.charts.clear();
  }
}
