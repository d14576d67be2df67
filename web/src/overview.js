// The overview at "/": active alerts on top, then one card per host, sorted by name.

import { fetchAlerts } from "./api.js";
import { activeAlertsPanel, historyList } from "./alertsview.js";
import { HostCard } from "./card.js";
import { h } from "./dom.js";
import { payloadIndex } from "./history.js";
import { range } from "./range.js";
import { markDirty } from "./schedule.js";

export class OverviewPage {
  constructor({ hosts, alerts, filterInput }) {
    this.hosts = hosts;
    this.alerts = alerts;
    this.filterInput = filterInput;
    this.cards = new Map();
    this.offs = [];
  }

  /** Topic patterns this page needs pushed. */
  patterns() {
    return ["metrics.*"];
  }

  mount(root) {
    document.title = "sysmonstm · hosts";
    this.alertsPanel = activeAlertsPanel(this.alerts);
    this.history = h("div", { class: "history-slot" });
    this.grid = h("div", { class: "cards", id: "hosts" });
    this.empty = h(
      "p",
      { class: "muted empty" },
      "No hosts yet. Start a collector: sysmonstm collect --aggregator HOST:PORT",
    );
    root.replaceChildren(this.alertsPanel.el, this.history, h("h2", {}, "Hosts"), this.empty, this.grid);
    for (const host of this.hosts.hosts.values()) this.addCard(host);
    this.offs.push(
      this.hosts.on("added", (host) => this.addCard(host)),
      this.hosts.on("updated", (host) => this.cards.get(host.id) && markDirty(this.cards.get(host.id))),
      this.hosts.on("metrics", (host, payload) => this.onMetrics(host, payload)),
      range.onChange(() => {
        for (const card of this.cards.values()) card.setWindow(range.ms);
      }),
    );
    this.onFilter = () => this.applyFilter();
    this.filterInput.addEventListener("input", this.onFilter);
    this.filterInput.hidden = false;
    this.ageTimer = setInterval(() => {
      for (const card of this.cards.values()) markDirty(card);
    }, 1000);
    fetchAlerts()
      .then((body) => this.history.replaceChildren(historyList(body.history || [])))
      .catch(() => {});
  }

  addCard(host) {
    if (this.cards.has(host.id)) return;
    const card = new HostCard(host, range.ms);
    this.cards.set(host.id, card);
    const name = host.name.toLowerCase();
    const after = [...this.grid.children].find(
      (el) => (this.cards.get(el.dataset.host)?.host.name.toLowerCase() ?? "") > name,
    );
    this.grid.insertBefore(card.el, after ?? null);
    card.el.hidden = !card.matches(this.filterText());
    this.empty.hidden = true;
  }

  onMetrics(host, payload) {
    const card = this.cards.get(host.id);
    if (!card) return;
    card.update(payload, payloadIndex(payload));
    markDirty(card);
  }

  filterText() {
    return this.filterInput.value.trim().toLowerCase();
  }

  applyFilter() {
    const text = this.filterText();
    for (const card of this.cards.values()) card.el.hidden = !card.matches(text);
  }

  unmount() {
    for (const off of this.offs) off();
    this.offs = [];
    clearInterval(this.ageTimer);
    this.filterInput.removeEventListener("input", this.onFilter);
    this.filterInput.hidden = true;
    this.alertsPanel.destroy();
    for (const card of this.cards.values()) card.destroy();
    this.cards.clear();
  }
}
