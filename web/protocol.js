// The chat protocol's vocabulary (docs/protocol.md): ids, frame kinds, and what each error
// means to a person. No I/O here.

/** Frames that answer a client frame (and echo its requestId); everything else is a push. */
export const ANSWER_TYPES = new Set(["sync", "marked", "conversations", "users", "pong", "history"]);

/** Largest `content` the server accepts (longer: PAYLOAD_TOO_LARGE). */
export const MAX_CONTENT = 4000;

/** A random UUID: the messageId of a message, picked once, its idempotency key. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Outside a secure context randomUUID is missing; getRandomValues is not.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

let requestCounter = 0;

/** A requestId ([A-Za-z0-9_-], 1-128): unique within this page's life. */
export function newRequestId() {
  requestCounter += 1;
  return `r${requestCounter}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Both people name their conversation the same: dm_<smaller sub>_<larger sub>. */
export function conversationIdFor(subA, subB) {
  const [first, second] = [subA, subB].sort();
  return `dm_${first}_${second}`;
}

/** Statuses in the order they move; a status only ever moves forward. */
const STATUS_RANK = { sending: 0, sent: 1, delivered: 2, read: 3 };

export function laterStatus(current, next) {
  return (STATUS_RANK[next] ?? -1) > (STATUS_RANK[current] ?? -1) ? next : current;
}

/**
 * API Gateway answers some frames itself, without `type`: {"message": "Forbidden"},
 * {"message": "Internal server error"}, {"message": "Endpoint request timed out"}. The app
 * treats them all as INTERNAL (docs/client.md, section 6).
 */
export function normalizeFrame(frame) {
  if (frame && typeof frame === "object" && !frame.type && typeof frame.message === "string") {
    // Its requestId is API Gateway's own, not one of ours: left out, so the frame is matched
    // like an error without one (to the oldest call still waiting).
    return { type: "error", code: "INTERNAL", message: frame.message, fromGateway: true };
  }
  return frame;
}

/** Codes that refuse a queued message for good: resending it would be refused again. */
export const FINAL_CODES = new Set(["VALIDATION_ERROR", "FORBIDDEN", "NOT_FOUND", "PAYLOAD_TOO_LARGE"]);

/**
 * The sentence a person reads for an error frame. `about` says what was being done:
 * "send", "delete", "read", "history", "find", "list" or "" (anything else).
 * The server's own sentence is written for developers, so it is never shown as is.
 */
export function errorSentence(code, about = "") {
  switch (code) {
    case "PAYLOAD_TOO_LARGE":
      return `This message is too long to send: the limit is ${MAX_CONTENT} characters.`;
    case "RATE_LIMITED":
      return about === "send"
        ? "You are sending very fast; the message will go out in a few seconds."
        : "Too many requests at once; trying again in a few seconds.";
    case "FORBIDDEN":
      if (about === "delete") return "Only the person who sent a message can delete it.";
      return "That conversation is not yours, so this was refused.";
    case "NOT_FOUND":
      if (about === "send") return "This person no longer has an account, so the message was not sent.";
      return "That message no longer exists.";
    case "VALIDATION_ERROR":
      if (about === "send") return "The server refused this message as malformed, so it was not sent.";
      if (about === "history") return "This server cannot show older messages.";
      return "The server did not understand that request.";
    case "DISCONNECTED":
      return "The connection dropped before the server answered; try again once online.";
    case "TIMEOUT":
      return "The server did not answer in time; try again in a moment.";
    case "INTERNAL":
    default:
      // A queued message is resent by itself; anything else the person asks for again.
      return about === "send"
        ? "The server had a problem; the message will be sent again shortly."
        : "The server had a problem; try again in a moment.";
  }
}

/** An error frame (or a local failure) as an exception carrying its code. */
export class ChatError extends Error {
  constructor(code, detail = "", messageId = undefined) {
    super(detail || code);
    this.code = code;
    this.messageId = messageId;
  }
}
