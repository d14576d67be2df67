// Time charts on uPlot: one instance per chart, created when it first shows, fed with
// setData by the shared scheduler, history loaded lazily per range, live rows appended.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { axisValue, kindOf } from "./format.js";
import { clock } from "./store.js";
import { forget, markDirty, unwatchVisibility, watchVisibility } from "./schedule.js";

const all = new Set();

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function palette() {
  const lines = [1, 2, 3, 4, 5, 6].map((i) => cssVar(`--chart-${i}`));
  return { lines, axis: cssVar("--muted"), grid: cssVar("--grid") };
}

// Colours come from CSS variables; rebuild every plot when the colour scheme flips.
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  for (const chart of all) chart.rebuild();
});

/**
 * A chart of one or more lines over the selected window.
 *
 * `opts`: {metric, lines: [{label}], height, mini, intervalMs?: () => ms, load?: async
 * (windowMs) => {t: ms[], cols: number[][], stepMs}}. `load` is called whenever the chart is
 * on screen and its history is stale (first show, range change).
 */
/** Rows with a null row inserted wherever two neighbours are more than `gap` apart. */
function withGaps(t, cols, gap) {
  const outT = [];
  const outCols = cols.map(() => []);
  for (let i = 0; i < t.length; i += 1) {
    if (i > 0 && t[i] - t[i - 1] > gap) {
      outT.push((t[i] + t[i - 1]) / 2);
      for (const col of outCols) col.push(null);
    }
    outT.push(t[i]);
    cols.forEach((col, j) => outCols[j].push(col[i] ?? null));
  }
  return [outT, outCols];
}

export class TimeChart {
  constructor(el, windowMs, opts) {
    this.el = el;
    this.opts = opts;
    this.windowMs = windowMs;
    this.t = [];
    this.cols = opts.lines.map(() => []);
    this.plot = null;
    this.stale = true;
    this.gen = 0;
    this.stepMs = 0;
    this.offscreenOk = false;
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(el);
    all.add(this);
    watchVisibility(el, this);
  }

  /** Called by the scheduler when the chart comes into view. */
  onShow() {
    this.loadHistory();
  }

  /** Show a different window: keep what is drawn until the new history arrives. */
  setWindow(windowMs) {
    this.windowMs = windowMs;
    this.stale = true;
    this.gen += 1;
    if (this.visible) this.loadHistory();
    markDirty(this);
  }

  async loadHistory() {
    if (!this.stale || !this.opts.load) return;
    this.stale = false;
    const gen = ++this.gen;
    this.el.dataset.loading = "true";
    try {
      const h = await this.opts.load(this.windowMs);
      if (gen === this.gen) this.setHistory(h.t, h.cols, h.stepMs);
    } catch (err) {
      if (gen === this.gen) {
        this.el.dataset.error = String(err.message || err);
        this.stale = true; // retried when it next comes into view or the range changes
      }
    } finally {
      if (gen === this.gen) delete this.el.dataset.loading;
    }
  }

  /**
   * Widest spacing drawn as a line; farther apart rows get a break (a host that was down).
   * Three sampling steps, at least 1/200 of the window.
   */
  gapS() {
    const step = Math.max(this.stepMs || 0, this.opts.intervalMs ? this.opts.intervalMs() : 0);
    return Math.max(this.windowMs / 200, 3 * step, 5000) / 1000;
  }

  /** Replace the rows up to the newest history time; live rows after it stay. */
  setHistory(tMs, cols, stepMs = 0) {
    this.stepMs = stepMs;
    const lastHist = tMs.length ? tMs[tMs.length - 1] / 1000 : -Infinity;
    let keepFrom = 0;
    while (keepFrom < this.t.length && this.t[keepFrom] <= lastHist) keepFrom += 1;
    const t = tMs.map((ms) => ms / 1000).concat(this.t.slice(keepFrom));
    const merged = this.cols.map((col, i) => (cols[i] || []).concat(col.slice(keepFrom)));
    [this.t, this.cols] = withGaps(t, merged, this.gapS());
    delete this.el.dataset.error;
    this.el.dataset.points = String(tMs.length);
    this.trim();
    markDirty(this);
  }

  /** Append one live row (Unix ms, one value per line); thinned to ~1000 rows per window. */
  append(tMs, values) {
    const t = tMs / 1000;
    const last = this.t.length ? this.t[this.t.length - 1] : -Infinity;
    if (t <= last || t - last < this.windowMs / 1_000_000) return;
    if (t - last > this.gapS() && this.t.length) {
      this.t.push((t + last) / 2);
      for (const col of this.cols) col.push(null);
    }
    this.t.push(t);
    values.forEach((v, i) => this.cols[i].push(v ?? null));
    this.trim();
    markDirty(this);
  }

  trim() {
    const cut = (clock.now() - this.windowMs) / 1000;
    let n = 0;
    while (n < this.t.length - 1 && this.t[n] < cut) n += 1;
    if (n > 0) {
      this.t.splice(0, n);
      for (const col of this.cols) col.splice(0, n);
    }
  }

  flush() {
    const width = this.el.clientWidth;
    if (!width) return;
    const data = [this.t, ...this.cols];
    if (!this.plot) this.plot = new uPlot(this.options(width), data, this.el);
    else this.plot.setData(data);
  }

  fit() {
    if (this.plot && this.el.clientWidth) {
      this.plot.setSize({ width: this.el.clientWidth, height: this.opts.height });
    }
  }

  rebuild() {
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
    }
    markDirty(this);
  }

  destroy() {
    all.delete(this);
    forget(this);
    unwatchVisibility(this.el);
    this.resize.disconnect();
    this.gen += 1;
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  options(width) {
    const { metric, mini, height, lines } = this.opts;
    const c = palette();
    const axis = { stroke: c.axis, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid } };
    const fmt = (u, v) => (v == null ? "–" : axisValue(metric, v));
    return {
      width,
      height,
      legend: { show: !mini && lines.length > 1 },
      cursor: mini ? { show: false } : { drag: { x: false, y: false } },
      scales: {
        x: {
          time: true,
          range: () => {
            const now = clock.now() / 1000;
            return [now - this.windowMs / 1000, now];
          },
        },
        y: {
          range:
            kindOf(metric) === "pct"
              ? [0, 100]
              : (u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.1 : 1],
        },
      },
      axes: mini
        ? [{ show: false }, { show: false }]
        : [axis, { ...axis, size: 70, values: (u, splits) => splits.map((v) => fmt(u, v)) }],
      series: [
        {},
        ...lines.map((line, i) => ({
          label: line.label,
          stroke: c.lines[i % c.lines.length],
          fill: mini && lines.length === 1 ? `${c.lines[0]}33` : undefined,
          width: 1.5,
          points: { show: false },
          value: fmt,
        })),
      ],
    };
  }
}
