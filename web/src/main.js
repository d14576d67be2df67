// Boot: load hosts and alerts over REST, open the live socket, route between the overview
// ("/"), host pages ("/host/<id>"), Deskmeter's calendar ("/deskmeter") and the payment review
// page ("/payments") without reloading.

import "./style.css";
import { fetchAlerts, fetchHosts } from "./api.js";
import { DeskmeterPage } from "./deskpage.js";
import { HealthWatch } from "./health.js";
import { HostPage } from "./hostpage.js";
import { OverviewPage } from "./overview.js";
import { PaymentsPage } from "./paymentspage.js";
import { bindRangeButtons } from "./range.js";
import { AlertStore, HostStore, clock } from "./store.js";
import { LiveSocket } from "./ws.js";

const hosts = new HostStore();
const alerts = new AlertStore();
const app = document.getElementById("app");
const conn = document.getElementById("conn");
const filterInput = document.getElementById("filter");
let page = null;

function pageFor(path) {
  const m = path.match(/^\/host\/([^/]+)\/?$/);
  if (m) return new HostPage({ hosts, alerts }, decodeURIComponent(m[1]));
  if (/^\/deskmeter\/?$/.test(path)) return new DeskmeterPage();
  if (/^\/payments\/?$/.test(path)) return new PaymentsPage();
  return new OverviewPage({ hosts, alerts, filterInput });
}

function render() {
  if (page) page.unmount();
  page = pageFor(location.pathname);
  page.mount(app);
  for (const a of document.querySelectorAll(".pages a")) {
    const name =
      page instanceof DeskmeterPage ? "deskmeter" : page instanceof PaymentsPage ? "payments" : "hosts";
    const here = a.dataset.page === name;
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  socket.setPatterns([...page.patterns(), "alerts.>"]);
  window.scrollTo(0, 0);
}

async function refresh() {
  try {
    const list = await fetchHosts();
    for (const h of list) {
      if (typeof h.age_s === "number") clock.observe(h.last_seen_ms + h.age_s * 1000);
      hosts.applyRest(h);
    }
  } catch (err) {
    console.warn("sysmonstm: host list failed", err);
  }
  try {
    alerts.reset((await fetchAlerts(0)).active || []);
  } catch (err) {
    console.warn("sysmonstm: alerts failed", err);
  }
}

function onEvent(env) {
  if (env.topic.startsWith("metrics.")) {
    clock.observe(env.time_ms);
    hosts.applyMetrics(env.payload);
  } else if (env.topic.startsWith("alerts.")) {
    alerts.apply(env.payload);
  } else if (page && page.onEnvelope) {
    page.onEnvelope(env);
  }
}

let wasLive = false;
function onState(state, detail) {
  conn.dataset.state = state;
  conn.textContent = detail ? `${state} (${detail})` : state;
  if (state === "live" && wasLive) {
    refresh(); // catch up on what passed while offline
    health.check();
  }
  if (state === "live") wasLive = true;
}

const socket = new LiveSocket(onEvent, onState);

// while the hot tier is down hosts come from stored data; on recovery reload them live
const health = new HealthWatch(document.getElementById("degraded"), (live) => {
  if (live === "ok") refresh();
});

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[href]");
  if (ev.defaultPrevented) return; // a page handled its own link
  if (!a || a.target || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname === "/docs") return;
  ev.preventDefault();
  // host pages keep the chosen range (?range=); the Deskmeter page has its own query
  const search = url.search || (location.pathname.startsWith("/deskmeter") ? "" : location.search);
  if (url.pathname !== location.pathname) history.pushState({}, "", url.pathname + search);
  render();
});
window.addEventListener("popstate", render);

bindRangeButtons(document);
render();
refresh();
health.check();
