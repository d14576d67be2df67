// The payment hub's review page at /payments: the live transaction feed (newest first, with
// decision badges), a decision's explanation, and the review queue. The API token is asked
// once and kept in sessionStorage. Live updates come over /ws (transactions.processed,
// risk.decision.*, payments.review.*), whose payloads are masked: what a role may see beyond
// that is always read over REST with the token.

import "./pay.css";
import { h, setText } from "./dom.js";
import {
  answerReview,
  fetchExponents,
  fetchMe,
  fetchQueue,
  fetchRecent,
  fetchTransaction,
  tokenStore,
} from "./paymentsapi.js";
import { learnExponents } from "./paymentsformat.js";
import { Feed, Queue, details, explanation } from "./paymentsviews.js";

const REVIEWERS = new Set(["analyst", "auditor", "admin"]);
const QUEUE_RELOAD_MS = 250; // a burst of review decisions reloads the queue once

export class PaymentsPage {
  constructor() {
    this.me = null;
    this.reloadTimer = null;
  }

  patterns() {
    return ["transactions.processed", "risk.decision.*", "payments.review.*"];
  }

  mount(root) {
    document.title = "sysmonstm · payments";
    const header = document.querySelectorAll(".top .ranges, .top .filter");
    this.hidden = [...header].filter((el) => !el.hidden);
    for (const el of this.hidden) el.hidden = true;

    this.tokenInput = h("input", { id: "pay-token", type: "password", autocomplete: "off", placeholder: "API token", "aria-label": "API token" });
    this.tokenForm = h(
      "form",
      { class: "pay-token", onsubmit: (ev) => this.useToken(ev) },
      h("label", { for: "pay-token" }, "API token "),
      this.tokenInput,
      h("button", { type: "submit" }, "Use token"),
    );
    this.who = h("span", { class: "pay-who", id: "pay-who" });
    this.signOut = h("button", { type: "button", class: "pay-signout", onclick: () => this.forget() }, "Forget token");
    this.status = h("p", { class: "muted pay-status", role: "status" });
    this.feed = new Feed((id) => this.pick(id));
    this.queue = new Queue((id, verdict, note) => answerReview(id, verdict, note));
    this.detail = h("div", { class: "pay-detail", id: "pay-detail" }, h("p", { class: "muted" }, "Pick a transaction to see its decision."));
    this.body = h(
      "div",
      { class: "pay-body" },
      this.queue.el,
      h("section", { class: "pay-feed-panel" }, h("h2", {}, "Live transactions"), this.feed.el),
      h("section", { class: "pay-detail-panel" }, h("h2", {}, "Decision"), this.detail),
    );
    this.el = h(
      "section",
      { class: "pay-page" },
      h("div", { class: "pay-title" }, h("h1", {}, "Payments"), this.who, this.signOut),
      this.tokenForm,
      this.status,
      this.body,
    );
    root.replaceChildren(this.el);
    this.start();
  }

  async start() {
    const signedIn = Boolean(tokenStore.get());
    this.tokenForm.hidden = signedIn;
    this.signOut.hidden = !signedIn;
    this.body.hidden = true;
    setText(this.who, "");
    if (!signedIn) {
      this.say("Enter an API token (sysmonstm payments token add) to see the hub.");
      return;
    }
    try {
      this.me = await fetchMe();
      if (this.gone) return;
      setText(this.who, `${this.me.user} · ${this.me.role}`);
      learnExponents(await fetchExponents());
      this.body.hidden = false;
      this.queue.el.hidden = !REVIEWERS.has(this.me.role);
      this.say("");
      for (const tx of await fetchRecent()) this.feed.add(tx);
      if (REVIEWERS.has(this.me.role)) await this.reloadQueue();
    } catch (err) {
      this.fail(err);
    }
  }

  useToken(ev) {
    ev.preventDefault();
    const token = this.tokenInput.value.trim();
    if (!token) return;
    tokenStore.set(token);
    this.tokenInput.value = "";
    this.start();
  }

  forget() {
    tokenStore.clear();
    this.me = null;
    this.start();
  }

  fail(err) {
    if (this.gone) return;
    if (err.status === 401) {
      tokenStore.clear();
      this.tokenForm.hidden = false;
      this.signOut.hidden = true;
      this.body.hidden = true;
    }
    this.say(err.message || String(err), true);
  }

  say(text, isError = false) {
    this.status.hidden = !text;
    this.status.className = `pay-status ${isError ? "error" : "muted"}`;
    setText(this.status, text);
  }

  async reloadQueue() {
    try {
      const items = await fetchQueue();
      if (!this.gone) this.queue.reset(items);
    } catch (err) {
      this.fail(err);
    }
  }

  async pick(eventId) {
    for (const tr of this.feed.body.querySelectorAll("tr.picked")) tr.classList.remove("picked");
    const row = this.feed.rows.get(eventId);
    if (row) row.classList.add("picked");
    try {
      const tx = await fetchTransaction(eventId);
      if (this.gone) return;
      this.detail.replaceChildren(details(tx), explanation(tx.decision));
    } catch (err) {
      this.detail.replaceChildren(h("p", { class: "error" }, err.message || String(err)));
    }
  }

  onEnvelope(env) {
    if (!this.me) return;
    const p = env.payload || {};
    if (env.topic === "transactions.processed" || env.topic.startsWith("risk.decision.")) {
      if (p.event_id) this.feed.add(p);
      if (env.topic === "risk.decision.review" && REVIEWERS.has(this.me.role)) {
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => this.reloadQueue(), QUEUE_RELOAD_MS);
      }
    } else if (env.topic.startsWith("payments.review.") && p.event_id && p.review) {
      this.queue.remove(p.event_id);
      this.feed.answered(p.event_id, p.review);
    }
  }

  unmount() {
    this.gone = true;
    clearTimeout(this.reloadTimer);
    for (const el of this.hidden) el.hidden = false;
  }
}
