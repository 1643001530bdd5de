// The socket: connect with the ID token, reconnect with backoff and jitter, keep the
// connection alive, and match answers to requests (docs/client.md, sections 1, 2, 5 and 8).
// It knows nothing about messages: every frame goes to `onFrame`.

import { ANSWER_TYPES, ChatError, newRequestId, normalizeFrame } from "./protocol.js";

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const CALL_TIMEOUT_MS = 15_000;
// API Gateway closes a connection after 10 minutes without a frame from the client.
const KEEPALIVE_IDLE_MS = 5 * 60_000;
const PONG_TIMEOUT_MS = 20_000;

export class Connection {
  /**
   * url: the WebSocket URL without the token. getToken(forceRefresh): a valid ID token.
   * onOpen(): runs after each handshake (sync, outbox); a rejection drops the connection.
   * onFrame(frame): every frame received. onState(state): "online", "reconnecting", "offline".
   */
  constructor({ url, getToken, onOpen, onFrame, onState }) {
    Object.assign(this, { url, getToken, onOpen, onFrame, onState });
    this.socket = null;
    this.state = "offline";
    this.attempt = 0;
    this.handshakeFailures = 0;
    this.pending = new Map(); // requestId -> {type, resolve, reject, timer}
    this.stopped = true;
    this.lastSent = 0;
    this.retryTimer = null;
    this.keepaliveTimer = null;
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.drop("offline");
    this.onVisible = () => {
      // Back in the foreground: a socket may have died unnoticed meanwhile.
      if (document.visibilityState !== "visible" || this.stopped) return;
      if (this.isOpen()) this.call("ping", {}, "pong", PONG_TIMEOUT_MS).catch(() => this.drop());
      else this.reconnectNow();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.retryTimer);
    this.drop("offline");
  }

  isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  /** Send a frame; false when there is no open socket (the caller keeps it for later). */
  send(frame) {
    if (!this.isOpen()) return false;
    this.socket.send(JSON.stringify(frame));
    this.lastSent = Date.now();
    return true;
  }

  /** Send `action` and resolve with the frame of `type` that answers it; reject with ChatError. */
  call(action, fields, type, timeoutMs = CALL_TIMEOUT_MS) {
    const requestId = newRequestId();
    return new Promise((resolve, reject) => {
      if (!this.send({ action, ...fields, requestId })) {
        reject(new ChatError("DISCONNECTED"));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new ChatError("TIMEOUT"));
      }, timeoutMs);
      this.pending.set(requestId, { type, resolve, reject, timer });
    });
  }

  /** Mark the connection good (the first sync is done): the backoff starts over. */
  markHealthy() {
    this.attempt = 0;
    this.handshakeFailures = 0;
    this.setState("online");
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  async connect() {
    if (this.stopped || this.socket) return;
    if (!navigator.onLine) {
      this.setState("offline");
      return; // the "online" event reconnects
    }
    this.setState("reconnecting");
    let token;
    try {
      // A handshake refused once may be an expired token: refresh once, then reconnect.
      token = await this.getToken(this.handshakeFailures === 1);
    } catch {
      return; // signed out: whoever signs out stops the connection
    }
    if (this.stopped || this.socket) return;
    const socket = new WebSocket(`${this.url}?token=${encodeURIComponent(token)}`);
    this.socket = socket;
    let opened = false;
    socket.onopen = async () => {
      opened = true;
      this.lastSent = Date.now();
      this.keepaliveTimer = setInterval(() => this.keepAlive(), 30_000);
      try {
        await this.onOpen();
      } catch {
        // A failed sync: drop and reconnect with backoff; the next connection syncs again.
        if (this.socket === socket) socket.close(4000, "sync failed");
      }
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearInterval(this.keepaliveTimer);
      this.failPending();
      if (this.stopped) return;
      if (!opened) this.handshakeFailures += 1;
      // 1001: API Gateway's idle timeout, its 2-hour limit or a deploy: reconnect at once.
      const delay = opened && event.code === 1001 ? 0 : this.nextDelay();
      this.setState(navigator.onLine ? "reconnecting" : "offline");
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  }

  /** Full jitter: a random wait in [0, min(30 s, 0.5 s x 2^n)), so clients do not retry in step. */
  nextDelay() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt += 1;
    return Math.random() * ceiling;
  }

  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  /** Close the socket; `offline` keeps it closed until the network comes back. */
  drop(state = "reconnecting") {
    const socket = this.socket;
    if (state === "offline") {
      this.socket = null;
      clearInterval(this.keepaliveTimer);
      this.failPending();
      this.setState("offline");
    }
    if (socket) socket.close();
  }

  keepAlive() {
    if (!this.isOpen() || Date.now() - this.lastSent < KEEPALIVE_IDLE_MS) return;
    // No pong in time: the network died without a close; reconnect.
    this.call("ping", {}, "pong", PONG_TIMEOUT_MS).catch(() => this.drop());
  }

  failPending() {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ChatError("DISCONNECTED"));
    }
    this.pending.clear();
  }

  receive(data) {
    let frame;
    try {
      frame = normalizeFrame(JSON.parse(data));
    } catch {
      return; // not JSON: nothing the protocol sends
    }
    if (!frame || typeof frame !== "object") return;
    const call = this.answeredCall(frame);
    if (call) {
      clearTimeout(call.timer);
      if (frame.type === "error") call.reject(new ChatError(frame.code, frame.message, frame.messageId));
      else call.resolve(frame);
      return;
    }
    this.onFrame(frame);
  }

  /** The pending call a frame answers: by requestId, else (a server that echoes none) by type. */
  answeredCall(frame) {
    let key = frame.requestId && this.pending.has(frame.requestId) ? frame.requestId : null;
    if (!key && !frame.requestId) {
      if (ANSWER_TYPES.has(frame.type)) {
        key = [...this.pending].find(([, call]) => call.type === frame.type)?.[0] ?? null;
      } else if (frame.type === "error" && !frame.messageId) {
        key = this.pending.keys().next().value ?? null; // the oldest call still waiting
      }
    }
    if (!key) return null;
    const call = this.pending.get(key);
    this.pending.delete(key);
    return call;
  }
}
