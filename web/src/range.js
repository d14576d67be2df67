// The selected time range (15 min .. 30 d), shared by every chart and kept across reloads.

export const RANGES = {
  "15m": 15 * 60_000,
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  "30d": 30 * 86_400_000,
};

const STORAGE_KEY = "sysmonstm.range";
const listeners = new Set();

function initial() {
  const fromUrl = new URLSearchParams(location.search).get("range");
  if (fromUrl && RANGES[fromUrl]) return fromUrl;
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && RANGES[saved]) return saved;
  } catch {
    // storage may be disabled; the default range is fine
  }
  return "15m";
}

export const range = {
  key: initial(),
  /** Width of the selected range in milliseconds. */
  get ms() {
    return RANGES[this.key];
  },
  set(key) {
    if (!RANGES[key] || key === this.key) return;
    this.key = key;
    try {
      localStorage.setItem(STORAGE_KEY, key);
    } catch {
      // not persisted: still applies to this page
    }
    for (const fn of listeners) fn(key);
  },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

/** Wire the header's range buttons (`[data-range]`) to the shared range. */
export function bindRangeButtons(root) {
  const buttons = [...root.querySelectorAll("[data-range]")];
  const paint = () => {
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.range === range.key));
  };
  for (const b of buttons) b.addEventListener("click", () => range.set(b.dataset.range));
  range.onChange(paint);
  paint();
}
