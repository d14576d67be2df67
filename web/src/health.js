// The live-tier banner: polls /healthz every few seconds and shows "live tier degraded —
// showing stored data" while the hot tier is down (the API then serves stored values).
// Background tabs poll as rarely as the browser lets their timers run; a tab that becomes
// visible again asks at once.

const POLL_MS = 4000;

export class HealthWatch {
  /**
   * @param {HTMLElement} banner shown while degraded (its `hidden` toggles)
   * @param {(live: "ok"|"degraded") => void} onChange called on each change of state
   */
  constructor(banner, onChange) {
    this.banner = banner;
    this.onChange = onChange;
    this.live = "ok";
    this.timer = null;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.check();
    });
  }

  /** Ask now, then every POLL_MS. */
  async check() {
    clearTimeout(this.timer);
    try {
      // 200 and 503 both carry the body; anything else leaves the banner as it was
      const res = await fetch("/healthz", { headers: { Accept: "application/json" }, cache: "no-store" });
      const body = await res.json();
      if (body && (body.live === "ok" || body.live === "degraded")) this.set(body.live);
    } catch {
      // the gateway itself is away: the connection indicator (#conn) says so
    } finally {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.check(), POLL_MS);
    }
  }

  set(live) {
    if (live === this.live) return;
    this.live = live;
    this.banner.hidden = live !== "degraded";
    this.banner.dataset.live = live;
    this.onChange(live);
  }
}
