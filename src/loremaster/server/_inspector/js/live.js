// One WebSocket to /v1/ws for the whole tab (docs/protocol.md): many contexts followed on
// it, each from the last revision seen, so a lost connection resumes where it stopped
// and no revision is missed or shown twice. Updates and presence go out on it too.

import { actingAs, token } from "./auth.js";

const RETRY_MS = [250, 500, 1000, 2000, 3000];
const PING_MS = 20000;
const SUBSCRIBE = "subscribe:"; // the request id of a subscription: this prefix and the context id
const FINAL_REFUSALS = new Set(["not_found", "permission_denied", "already_subscribed", "validation_failed"]);

class Live extends EventTarget {
  constructor() {
    super();
    this.state = "idle"; // idle | connecting | open | lost
    this.followed = new Map(); // context id -> {revision, handlers: Set}
    this.pending = new Map(); // request id -> {resolve, reject}
    this.socket = null;
    this.attempt = 0;
    this.counter = 0;
    this.pinger = null;
  }

  setState(state, detail = "") {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, detail } }));
  }

  connect() {
    if (this.socket) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const user = actingAs();
    const query = user && !token() ? `?user=${encodeURIComponent(user)}` : "";
    this.setState(this.attempt ? "lost" : "connecting", this.attempt ? "reconnecting…" : "");
    const socket = new WebSocket(`${scheme}://${location.host}/v1/ws${query}`);
    this.socket = socket;
    socket.addEventListener("open", () => this.opened());
    socket.addEventListener("message", (event) => this.received(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.closed(event));
  }

  opened() {
    this.attempt = 0;
    const saved = token();
    if (saved) this.send({ type: "auth", access_token: saved }); // a browser cannot set headers here
    this.setState("open");
    for (const [contextId, followed] of this.followed) this.subscribe(contextId, followed.revision);
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
  }

  closed(event) {
    clearInterval(this.pinger);
    this.socket = null;
    for (const { reject } of this.pending.values()) {
      reject(Object.assign(new Error("the connection was lost before the answer"), { code: "connection_lost" }));
    }
    this.pending.clear();
    if (!this.followed.size) {
      this.setState("idle");
      return;
    }
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.setState("lost", event.code === 1001 ? "the server is restarting; reconnecting…" : "reconnecting…");
    setTimeout(() => this.connect(), delay);
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  subscribe(contextId, revision) {
    const requestId = `${SUBSCRIBE}${contextId}`;
    this.send({ type: "subscribe", request_id: requestId, context_id: contextId, since_revision: revision });
  }

  /** A subscription refused: for a passing reason (a server still starting), try again. */
  subscribeFailed(contextId, code) {
    const followed = this.followed.get(contextId);
    if (!followed || FINAL_REFUSALS.has(code)) return;
    setTimeout(() => this.followed.get(contextId) === followed && this.subscribe(contextId, followed.revision), 1000);
  }

  received(message) {
    switch (message.type) {
      case "event":
        this.deliver(message);
        break;
      case "snapshot":
        this.deliver({ ...message, op: "snapshot" });
        break;
      case "ack":
        this.settle(message.request_id, (waiting) => waiting.resolve(message));
        break;
      case "error":
        if (String(message.request_id).startsWith(SUBSCRIBE)) {
          this.subscribeFailed(message.request_id.slice(SUBSCRIBE.length), message.code);
        } else if (message.request_id) {
          this.settle(message.request_id, (waiting) =>
            waiting.reject(Object.assign(new Error(message.message), { code: message.code, details: message })),
          );
        } else {
          this.dispatchEvent(new CustomEvent("problem", { detail: message }));
        }
        break;
      case "presence":
        this.dispatchEvent(new CustomEvent("presence", { detail: message }));
        break;
      case "unsubscribed":
        this.ended(message);
        break;
      default:
        break;
    }
  }

  deliver(event) {
    const followed = this.followed.get(event.context_id);
    if (!followed || event.revision <= followed.revision) return; // seen already
    followed.revision = event.revision;
    for (const handler of followed.handlers) handler(event);
  }

  /** The server ended a subscription: storage unavailable or an error is retried. */
  ended({ context_id: contextId, reason }) {
    const followed = this.followed.get(contextId);
    if (!followed) return;
    if (reason === "forbidden") {
      this.followed.delete(contextId);
      this.dispatchEvent(new CustomEvent("problem", { detail: { code: "forbidden", message: "you may no longer read this context" } }));
      return;
    }
    setTimeout(() => this.followed.get(contextId) === followed && this.subscribe(contextId, followed.revision), 2000);
  }

  settle(requestId, how) {
    const waiting = this.pending.get(requestId);
    if (!waiting) return;
    this.pending.delete(requestId);
    how(waiting);
  }

  /**
   * Call `handler(event)` for each change to a context after `revision` (the revision the
   * caller has shown). Returns the function that stops following.
   */
  follow(contextId, revision, handler) {
    let followed = this.followed.get(contextId);
    if (!followed) {
      followed = { revision, handlers: new Set() };
      this.followed.set(contextId, followed);
      this.subscribe(contextId, revision);
    }
    followed.handlers.add(handler);
    this.connect();
    return () => {
      followed.handlers.delete(handler);
      if (followed.handlers.size || this.followed.get(contextId) !== followed) return;
      this.followed.delete(contextId);
      this.send({ type: "unsubscribe", context_id: contextId });
    };
  }

  /** Send a merge patch made at `expectedRevision`; resolves with the ack. */
  update(contextId, changes, expectedRevision, strategy) {
    const requestId = `r${(this.counter += 1)}`;
    const answer = new Promise((resolve, reject) => this.pending.set(requestId, { resolve, reject }));
    const sent = this.send({
      type: "update",
      request_id: requestId,
      context_id: contextId,
      changes,
      expected_revision: expectedRevision,
      strategy,
    });
    if (!sent) {
      this.pending.delete(requestId);
      return Promise.reject(Object.assign(new Error("not connected: the change was not sent"), { code: "offline" }));
    }
    return answer;
  }

  presence(contextId, viewing, typing = false) {
    this.send({ type: "presence", context_id: contextId, viewing, typing });
  }
}

export const live = new Live();
