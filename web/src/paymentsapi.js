// REST client for /api/v1/payments (docs/payments.md "Gateway API"). Every call carries the
// bearer token the user entered once; it lives in sessionStorage (this tab, until it closes).

import { ApiError } from "./api.js";

const KEY = "sysmonstm.payments.token";
const BASE = "/api/v1/payments";

export const tokenStore = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
};

/** `method` on `path` (under /api/v1/payments) as the token's user; an `ApiError` if not 2xx. */
async function call(method, path, payload) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${tokenStore.get()}` };
  const init = { method, headers };
  if (payload !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  const res = await fetch(BASE + path, init);
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = body && body.error ? body.error : { code: "http", message: res.statusText };
    throw new ApiError(res.status, err.code, err.message);
  }
  return body;
}

export const fetchMe = () => call("GET", "/me");

export const fetchExponents = async () => (await call("GET", "/currencies")).exponents;

export const fetchTransaction = (eventId) =>
  call("GET", `/transactions/${encodeURIComponent(eventId)}`);

/** The newest `keep` transactions of the last `from` (oldest first, as the API pages them). */
export async function fetchRecent(from = "-1h", keep = 100, maxPages = 5) {
  let rows = [];
  let after = null;
  for (let i = 0; i < maxPages; i += 1) {
    const q = new URLSearchParams({ from, limit: "1000" });
    if (after) q.set("after", after);
    const page = await call("GET", `/transactions?${q}`);
    rows = rows.concat(page.transactions).slice(-keep);
    after = page.next;
    if (!after) break;
  }
  return rows;
}

export const fetchQueue = async () => (await call("GET", "/reviews?limit=500")).reviews;

export const answerReview = (eventId, verdict, note) =>
  call("POST", `/reviews/${encodeURIComponent(eventId)}`, { verdict, note });
