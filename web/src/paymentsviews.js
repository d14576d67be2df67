// The pieces of the payments page: the live feed (newest first), a decision's explanation,
// and the review queue where an analyst approves or declines with a note.

import { h, setText } from "./dom.js";
import { cardLabel, formatAmount, formatTime, valueText } from "./paymentsformat.js";

const FEED_ROWS = 200;

export function badge(action, extra = "") {
  return h("span", { class: `pay-badge pay-${action}` }, extra ? `${action} · ${extra}` : action);
}

/** The rules that matched, each with its reason and the values it saw. */
export function explanation(decision) {
  if (!decision || !decision.hits || !decision.hits.length) {
    return h("p", { class: "muted pay-nohits" }, "No rule matched: approved by default.");
  }
  return h(
    "ul",
    { class: "pay-hits" },
    decision.hits.map((hit) =>
      h(
        "li",
        { dataset: { rule: hit.rule } },
        h("strong", {}, hit.rule),
        " ",
        badge(hit.action),
        h("span", { class: "pay-reason" }, hit.reason),
        h(
          "span",
          { class: "pay-values" },
          Object.entries(hit.values || {}).map(([k, v]) =>
            h("code", { class: "chip" }, `${k}=${valueText(v)}`),
          ),
        ),
      ),
    ),
  );
}

/** A transaction's fields as a definition list (whatever the caller's role may see). */
export function details(tx) {
  const rows = [
    ["Event", tx.event_id],
    ["Payment", `${tx.processor} ${tx.transaction_id}`],
    ["Status", tx.status],
    ["Amount", formatAmount(tx.amount_minor, tx.currency, tx.exponent)],
    ["Time", formatTime(tx.time_ms)],
    ["Card", `${cardLabel(tx.card)} · ${tx.card.fingerprint || "–"} · ${tx.card.country || "–"}`],
    ["Country / IP country", `${tx.country || "–"} / ${tx.ip_country || "–"}`],
  ];
  if (tx.ip) rows.push(["IP", tx.ip]);
  if (tx.email) rows.push(["E-mail", tx.email]);
  if (tx.customer_name) rows.push(["Name", tx.customer_name]);
  if (tx.description) rows.push(["Description", tx.description]);
  return h("dl", { class: "pay-fields" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** The live feed: newest first, one row per event, at most FEED_ROWS. */
export class Feed {
  constructor(onPick) {
    this.rows = new Map();
    this.body = h("tbody");
    this.el = h(
      "table",
      { class: "pay-feed", id: "pay-feed" },
      h(
        "thead",
        {},
        h("tr", {}, ["Time", "Processor", "Amount", "Card", "Country", "Status", "Decision"].map((t) => h("th", {}, t))),
      ),
      this.body,
    );
    this.body.addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-event-id]");
      if (tr) onPick(tr.dataset.eventId);
    });
  }

  /** Add (or refresh) a transaction: a REST row or a bus payload, both carry its decision. */
  add(tx) {
    const old = this.rows.get(tx.event_id);
    const tr = h(
      "tr",
      { dataset: { eventId: tx.event_id, action: tx.decision ? tx.decision.action : "" } },
      h("td", {}, formatTime(tx.time_ms)),
      h("td", {}, tx.processor),
      h("td", { class: "num" }, formatAmount(tx.amount_minor, tx.currency, tx.exponent)),
      h("td", {}, cardLabel(tx.card)),
      h("td", {}, [tx.country, tx.ip_country].filter(Boolean).join(" / ") || "–"),
      h("td", {}, tx.status),
      h("td", { class: "pay-decision" }, tx.decision ? badge(tx.decision.action) : "–"),
    );
    tr.dataset.time = String(tx.time_ms);
    if (old) {
      old.replaceWith(tr);
    } else {
      // newest first by the transaction's own time (bus order may differ a little)
      const next = [...this.body.children].find((r) => Number(r.dataset.time) <= tx.time_ms);
      this.body.insertBefore(tr, next || null);
    }
    this.rows.set(tx.event_id, tr);
    while (this.body.children.length > FEED_ROWS) {
      const last = this.body.lastElementChild;
      this.rows.delete(last.dataset.eventId);
      last.remove();
    }
  }

  /** Show an analyst's answer on the row it concerns (if it is on screen). */
  answered(eventId, review) {
    const tr = this.rows.get(eventId);
    if (!tr) return;
    tr.dataset.verdict = review.verdict;
    const cell = tr.querySelector(".pay-decision");
    cell.replaceChildren(badge("review"), " ", badge(review.verdict === "approve" ? "approve" : "block", `${review.verdict}d by ${review.analyst}`));
  }
}

/** The review queue; `answer(eventId, verdict, note)` resolves once stored or throws. */
export class Queue {
  constructor(answer) {
    this.answer = answer;
    this.count = h("span", { class: "pay-count" }, "0");
    this.list = h("div", { class: "pay-queue", id: "pay-queue" });
    this.empty = h("p", { class: "muted" }, "Nothing waits for review.");
    this.el = h("section", { class: "pay-queue-panel" }, h("h2", {}, "Review queue ", this.count), this.empty, this.list);
  }

  reset(items) {
    const seen = new Set(items.map((i) => i.event_id));
    for (const el of [...this.list.children]) if (!seen.has(el.dataset.eventId)) el.remove();
    for (const item of items) if (!this.find(item.event_id)) this.list.append(this.item(item));
    this.changed();
  }

  find(eventId) {
    return [...this.list.children].find((el) => el.dataset.eventId === eventId);
  }

  remove(eventId) {
    const el = this.find(eventId);
    if (el) el.remove();
    this.changed();
  }

  changed() {
    setText(this.count, String(this.list.children.length));
    this.empty.hidden = this.list.children.length > 0;
  }

  item(tx) {
    const note = h("input", { class: "pay-note", type: "text", maxlength: "2000", placeholder: "Note (why)", "aria-label": "Review note" });
    const status = h("p", { class: "pay-item-status", role: "status" });
    const buttons = ["approve", "decline"].map((verdict) =>
      h("button", { type: "button", class: `pay-${verdict}-btn`, dataset: { verdict } }, verdict === "approve" ? "Approve" : "Decline"),
    );
    const el = h(
      "article",
      { class: "pay-item", dataset: { eventId: tx.event_id } },
      h(
        "header",
        {},
        h("strong", { class: "pay-amount" }, formatAmount(tx.amount_minor, tx.currency, tx.exponent)),
        h("span", {}, `${tx.processor} · ${cardLabel(tx.card)} · ${formatTime(tx.time_ms)}`),
      ),
      details(tx),
      explanation(tx.decision),
      h("div", { class: "pay-actions" }, note, ...buttons),
      status,
    );
    for (const b of buttons) {
      b.addEventListener("click", async () => {
        for (const x of buttons) x.disabled = true;
        status.className = "pay-item-status";
        setText(status, "Saving…");
        try {
          await this.answer(tx.event_id, b.dataset.verdict, note.value);
          this.remove(tx.event_id);
        } catch (err) {
          if (err.status === 409 || err.status === 404) {
            this.remove(tx.event_id); // someone else answered it: it is no longer waiting
            return;
          }
          status.className = "pay-item-status error";
          setText(status, err.message || String(err));
          for (const x of buttons) x.disabled = false;
        }
      });
    }
    return el;
  }
}
