// Money and decisions as the payment pages show them. Amounts are integer minor units; the
// currency's ISO 4217 exponent (from /api/v1/payments/currencies) places the decimal point,
// so no amount ever passes through a float.

const exponents = new Map();

export function learnExponents(table) {
  for (const [code, exp] of Object.entries(table || {})) exponents.set(code, exp);
}

export function exponentOf(currency, hint) {
  if (Number.isInteger(hint)) return hint;
  return exponents.has(currency) ? exponents.get(currency) : 2;
}

/** `1234567, "USD"` → `"12,345.67 USD"`; `5000, "JPY"` → `"5,000 JPY"`; `1, "KWD"` → `"0.001 KWD"`. */
export function formatAmount(minor, currency, hint) {
  const exp = exponentOf(currency, hint);
  const negative = minor < 0;
  const digits = String(Math.abs(Math.trunc(minor))).padStart(exp + 1, "0");
  const whole = digits.slice(0, digits.length - exp).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = exp ? `.${digits.slice(digits.length - exp)}` : "";
  return `${negative ? "-" : ""}${whole}${frac} ${currency}`;
}

export function formatTime(ms) {
  return new Date(ms).toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** `{bin, last4}` → `"424242 •••• 4242"` (masked card; never more). */
export function cardLabel(card) {
  if (!card || (!card.bin && !card.last4)) return "–";
  return `${card.bin || "?"} •••• ${card.last4 || "????"}`;
}

/** One rule value for an explanation: strings as they are, the rest as JSON. */
export function valueText(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}
