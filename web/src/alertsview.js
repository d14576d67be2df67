// Alert lists: the active board (severity colours, message, since when) and recent history.

import { h, setText } from "./dom.js";
import { formatAge, formatTime } from "./format.js";
import { clock } from "./store.js";
import { markDirty } from "./schedule.js";

function since(alert) {
  return alert.state === "firing" ? alert.fired_ms || alert.started_ms : alert.started_ms;
}

function alertItem(alert) {
  const at = since(alert);
  const when = at
    ? h("time", { datetime: new Date(at).toISOString(), title: formatTime(at), dataset: { at } })
    : "";
  const detail = [alert.rule, alert.key].filter(Boolean).join(" · ");
  const measure =
    alert.value != null
      ? ` (${Number(alert.value).toFixed(2)}${alert.threshold != null ? ` vs ${alert.threshold}` : ""})`
      : "";
  return h(
    "li",
    { class: `alert sev-${alert.severity || "info"}`, dataset: { alert: alert.id, state: alert.state } },
    h("span", { class: "sev" }, alert.severity || "info"),
    h("span", { class: "state" }, alert.state),
    h("span", { class: "msg" }, (alert.message || alert.rule || "alert") + measure),
    h("span", { class: "detail" }, detail),
    when,
  );
}

/** Refresh every "since" text under `root` ("for 5 min"). */
function paintAges(root) {
  for (const el of root.querySelectorAll("time[data-at]")) {
    setText(el, `for ${formatAge(clock.now() - Number(el.dataset.at))}`);
  }
}

/**
 * The active alerts of `store` that pass `filter`, kept current. Returns {el, destroy}.
 * With `title` the list has a heading; an empty board says so.
 */
export function activeAlertsPanel(store, filter = () => true, title = "Active alerts") {
  const count = h("span", { class: "count" }, "0");
  const list = h("ul", { class: "alert-list" });
  const empty = h("p", { class: "muted empty" }, "No active alerts.");
  const el = h("section", { class: "alerts", id: "alerts" }, h("h2", {}, title, " ", count), list, empty);
  const task = {
    offscreenOk: true,
    flush() {
      const items = store.sorted(filter);
      list.replaceChildren(...items.map(alertItem));
      setText(count, String(items.length));
      empty.hidden = items.length > 0;
      el.classList.toggle("has-alerts", items.length > 0);
      paintAges(list);
    },
  };
  task.flush();
  const off = store.on("changed", () => markDirty(task));
  const timer = setInterval(() => paintAges(list), 1000);
  return {
    el,
    destroy() {
      off();
      clearInterval(timer);
    },
  };
}

/** A static list of past transitions (newest first), e.g. from /api/v1/alerts history. */
export function historyList(alerts, title = "Recent alert history") {
  if (!alerts.length) return h("p", { class: "muted" }, "No alert history.");
  const rows = alerts.map((a) =>
    h(
      "li",
      { class: `alert sev-${a.severity || "info"}`, dataset: { state: a.state } },
      h("span", { class: "sev" }, a.severity || "info"),
      h("span", { class: "state" }, a.state),
      h("span", { class: "msg" }, a.message || a.rule || "alert"),
      h("span", { class: "detail" }, [a.rule, a.key].filter(Boolean).join(" · ")),
      h("time", { datetime: new Date(a.time_ms).toISOString() }, formatTime(a.time_ms)),
    ),
  );
  return h("details", { class: "history" }, h("summary", {}, title), h("ul", { class: "alert-list" }, rows));
}
