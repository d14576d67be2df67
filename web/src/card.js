// A host card on the overview: name, labels, age of the last sample and four live mini
// charts (CPU, memory, the fullest disk, network rx/tx summed over interfaces but `lo`).

import { TimeChart } from "./charts.js";
import { h, labelChips, setText, valueCell } from "./dom.js";
import { formatAge, formatValue } from "./format.js";
import { latestSum, lineValues, loadLines } from "./history.js";
import { clock } from "./store.js";

const MINI_HEIGHT = 56;

function fullestDisk(host) {
  let best = null;
  for (const key of host.keysOf("disk.used_pct")) {
    const v = host.latest.get(key)?.v ?? -1;
    if (!best || v > best.v) best = { key, v };
  }
  return best ? best.key : null;
}

function interfaces(host, metric) {
  return host.keysOf(metric).filter((k) => !k.includes('iface="lo"'));
}

/** The four panels of a card; each knows its lines as lists of series keys. */
function panels(host) {
  const disk = fullestDisk(host);
  return [
    { id: "cpu", title: "CPU", metric: "cpu.used", lines: [["cpu.used"]], labels: ["used"] },
    {
      id: "mem",
      title: "Memory",
      metric: "mem.used_pct",
      lines: [["mem.used_pct"]],
      labels: ["used"],
    },
    {
      id: "disk",
      title: disk ? `Disk ${disk.match(/mount="([^"]*)"/)?.[1] ?? ""}` : "Disk",
      metric: "disk.used_pct",
      lines: [disk ? [disk] : []],
      labels: ["used"],
      valueKey: disk,
    },
    {
      id: "net",
      title: "Net",
      metric: "net.rx_bps",
      lines: [interfaces(host, "net.rx_bps"), interfaces(host, "net.tx_bps")],
      labels: ["rx", "tx"],
    },
  ];
}

export class HostCard {
  constructor(host, windowMs) {
    this.host = host;
    this.offscreenOk = true;
    this.nameEl = h("a", { class: "host-name", href: `/host/${encodeURIComponent(host.id)}` });
    this.ageEl = h("span", { class: "age", title: "Age of the last sample" });
    this.labelsEl = h("div", { class: "chips" });
    this.body = h("div", { class: "panels" });
    this.el = h(
      "article",
      { class: "card", dataset: { host: host.id } },
      h("header", { class: "card-head" }, this.nameEl, this.ageEl),
      this.labelsEl,
      this.body,
    );
    this.windowMs = windowMs;
    this.panels = [];
    this.layoutSig = "";
    this.build();
    this.flush();
  }

  /** (Re)build the panels when the set of keys they draw from changed. */
  build() {
    const specs = panels(this.host);
    const sig = JSON.stringify(specs.map((p) => p.lines));
    if (sig === this.layoutSig) return;
    this.layoutSig = sig;
    for (const p of this.panels) p.chart.destroy();
    this.body.replaceChildren();
    this.panels = specs.map((spec) => {
      const readings = spec.lines.map((keys, i) => {
        const attrs =
          spec.id === "net"
            ? { dataset: { derived: i === 0 ? "net.rx_bps" : "net.tx_bps" } }
            : { dataset: { metric: spec.valueKey ?? spec.metric } };
        return valueCell(attrs);
      });
      const titleEl = h("span", { class: "panel-title" }, spec.title);
      const plotEl = h("div", { class: "plot mini" });
      const head = h(
        "div",
        { class: "panel-head" },
        titleEl,
        h("span", { class: "readings" }, readings.map((r) => r.el)),
      );
      const hostId = this.host.id;
      const chart = new TimeChart(plotEl, this.windowMs, {
        metric: spec.metric,
        mini: true,
        height: MINI_HEIGHT,
        lines: spec.labels.map((label) => ({ label })),
        intervalMs: () => this.host.intervalMs,
        load: (windowMs) => loadLines(hostId, spec.lines, windowMs),
      });
      this.body.append(h("section", { class: "panel", dataset: { panel: spec.id } }, head, plotEl));
      return { spec, readings, chart };
    });
  }

  /** Take one metrics event of this host: append rows to the charts, refresh the text. */
  update(payload, index) {
    if (this.panels.some((p) => p.spec.lines.some((keys) => keys.length === 0))) this.build();
    const times = payload.times_ms || [];
    times.forEach((t, r) => {
      const row = payload.values[r] || [];
      for (const p of this.panels) {
        const vals = lineValues(p.spec.lines, index, row);
        if (vals.some((v) => v !== null)) p.chart.append(t, vals);
      }
    });
  }

  setWindow(windowMs) {
    this.windowMs = windowMs;
    for (const p of this.panels) p.chart.setWindow(windowMs);
  }

  /** Text refresh (scheduled): name, labels, age, current readings. */
  flush() {
    const host = this.host;
    setText(this.nameEl, host.name);
    this.nameEl.title = host.id;
    const sig = JSON.stringify(host.labels);
    if (sig !== this.labelsEl.dataset.sig) {
      this.labelsEl.dataset.sig = sig;
      this.labelsEl.replaceChildren(...labelChips(host.labels));
    }
    const age = host.lastSeenMs ? clock.now() - host.lastSeenMs : null;
    setText(this.ageEl, age === null ? "no data" : formatAge(age));
    this.el.classList.toggle("stale", age === null || age > 3 * host.intervalMs + 2000);
    for (const p of this.panels) {
      p.spec.lines.forEach((keys, i) => {
        const v = latestSum(host, keys);
        const [text, unit] = formatValue(p.spec.metric, v);
        setText(p.readings[i].value, text);
        setText(p.readings[i].unit, unit);
        const raw = v === null ? "" : String(v);
        if (p.readings[i].value.dataset.value !== raw) p.readings[i].value.dataset.value = raw;
      });
    }
  }

  /** Whether the card matches a filter text (hostname, id or a label). */
  matches(text) {
    if (!text) return true;
    const hay = [this.host.id, this.host.hostname, ...Object.entries(this.host.labels).flat()];
    return hay.some((s) => String(s).toLowerCase().includes(text));
  }

  destroy() {
    for (const p of this.panels) p.chart.destroy();
    this.el.remove();
  }
}
