// The live connection to /ws: keeps a wanted set of topic patterns subscribed across
// reconnects and hands every pushed envelope to `onEvent`.

const MAX_BACKOFF_MS = 10_000;

export class LiveSocket {
  /**
   * @param {(env: {id, topic, source, time_ms, payload}) => void} onEvent
   * @param {(state: "connecting"|"live"|"offline", detail?: string) => void} onState
   */
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.wanted = new Set();
    this.ws = null;
    this.backoff = 500;
    this.connect();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws`;
  }

  connect() {
    this.onState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 500;
      this.onState("live");
      if (this.wanted.size) this.send({ subscribe: [...this.wanted] });
    };
    ws.onmessage = (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (data && typeof data.topic === "string") this.onEvent(data);
      else if (data && data.error) console.warn("sysmonstm /ws:", data.error);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.onState("offline", `retrying in ${Math.round(this.backoff / 1000)} s`);
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    };
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  /** Make the subscribed patterns exactly `patterns` (sends only the difference). */
  setPatterns(patterns) {
    const next = new Set(patterns);
    const add = [...next].filter((p) => !this.wanted.has(p));
    const drop = [...this.wanted].filter((p) => !next.has(p));
    this.wanted = next;
    if (drop.length) this.send({ unsubscribe: drop });
    if (add.length) this.send({ subscribe: add });
  }
}

/** The topic token the server derives from a machine id (mirrors events.topic_token). */
export function topicToken(text) {
  return text.replace(/[\s.*>]/g, "_") || "_";
}
