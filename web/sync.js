// MessageSync: what the page does with the connection. Sync and confirm on every connect,
// send the outbox (one message on the wire per conversation, resent until acked), confirm
// what arrives, mark what is shown as read, and read history pages (docs/client.md, 3-9).

import { ChatError, FINAL_CODES, errorSentence, uuid } from "./protocol.js";

const SYNC_PAGE_LIMIT = 50;
const MAX_SYNC_PAGES = 1000;
const ACK_TIMEOUT_MS = 10_000;
const CONFIRM_INTERVAL_MS = 1000;
const HISTORY_PAGE_LIMIT = 30;

export class MessageSync {
  /** notify(sentence): tell the person something went wrong. */
  constructor(store, connection, notify) {
    this.store = store;
    this.connection = connection;
    this.notify = notify;
    this.onWire = new Map(); // conversationId -> {messageId, timer}
    this.toConfirm = new Set();
    this.confirmTimer = null;
    this.lastConfirm = 0;
    this.visibleConversation = null;
    this.historySupported = true;
    this.deleting = new Set(); // messageIds of deleteMessage frames sent
  }

  /** After each handshake: sync every page, refresh the list, then send the outbox. */
  async connected() {
    this.onWire.clear(); // what was on the wire of the old socket is resent now
    let since;
    for (let page = 0; page < MAX_SYNC_PAGES; page += 1) {
      const frame = await this.connection.call("syncMessages", { limit: SYNC_PAGE_LIMIT, since }, "sync");
      this.receiveMany(frame.messages || []);
      if (!frame.hasMore || !frame.cursor) break;
      since = frame.cursor;
    }
    this.flushConfirmations();
    // The list too, before saying "online": online then means up to date. A list that fails
    // to come is not worth a reconnect; the next connection asks again.
    await this.refreshConversations().catch(() => {});
    this.connection.markHealthy();
    this.flushOutbox();
    this.markVisibleRead();
  }

  // -- incoming -----------------------------------------------------------------------------

  handle(frame) {
    switch (frame.type) {
      case "message":
        this.receiveMany([frame.message]);
        break;
      case "ack":
        this.acked(frame.messageId, frame.timestamp);
        break;
      case "status":
        // A status for a queued message means the server stored it: as good as its ack.
        if (this.store.outbox.some((q) => q.messageId === frame.messageId)) this.acked(frame.messageId, null);
        this.store.setStatus(frame.messageId, frame.status);
        break;
      case "messageDeleted":
        this.deleting.delete(frame.messageId);
        this.store.markDeleted(frame.messageId);
        break;
      case "marked":
        this.marked(frame);
        break;
      case "error":
        this.refused(frame);
        break;
      default:
        return; // an answer whose call timed out, or a frame of a newer protocol: nothing to do
    }
    this.store.changed();
  }

  receiveMany(messages) {
    for (const message of messages) {
      if (!message || !message.messageId) continue;
      const isNew = this.store.upsert(message);
      const fromOther = message.senderId !== this.store.me.sub;
      // Confirm every copy sent to this person (to oneself included), known or not: it comes
      // again until a confirmation reaches the server.
      if (message.recipientId === this.store.me.sub) this.toConfirm.add(message.messageId);
      if (isNew && fromOther && message.conversationId !== this.visibleConversation && message.status !== "read") {
        const conversation = this.store.conversations.get(message.conversationId);
        if (conversation) conversation.unreadCount = (conversation.unreadCount || 0) + 1;
      }
    }
    this.scheduleConfirmations();
    this.store.changed();
    this.markVisibleRead();
  }

  acked(messageId, timestamp) {
    const wire = [...this.onWire].find(([, w]) => w.messageId === messageId);
    if (wire) {
      clearTimeout(wire[1].timer);
      this.onWire.delete(wire[0]);
    }
    // An ack for a message no longer queued (a resend crossed the first ack) changes nothing.
    if (this.store.dequeue(messageId)) {
      const message = this.store.messages.get(messageId);
      if (message) {
        if (timestamp) message.timestamp = timestamp;
        message.status = message.status === "sending" ? "sent" : message.status;
        this.store.touchConversation(message);
      }
    }
    this.flushOutbox();
  }

  marked(frame) {
    for (const id of frame.messageIds || []) this.store.setStatus(id, "read");
    const conversation = this.store.conversations.get(frame.conversationId);
    if (conversation) conversation.unreadCount = this.store.unreadOf(frame.conversationId).length;
  }

  /** An error about a queued message (it names a messageId): refused for good, or retried. */
  refused(frame) {
    if (!frame.messageId || !this.store.outbox.some((q) => q.messageId === frame.messageId)) {
      this.notify(errorSentence(frame.code, this.deleting.delete(frame.messageId) ? "delete" : ""));
      return;
    }
    if (!FINAL_CODES.has(frame.code)) {
      // RATE_LIMITED, INTERNAL: kept; the ack timeout resends it.
      this.notify(errorSentence(frame.code, "send"));
      return;
    }
    this.store.dequeue(frame.messageId);
    const message = this.store.messages.get(frame.messageId);
    if (message) Object.assign(message, { status: "failed", failure: errorSentence(frame.code, "send") });
    this.notify(errorSentence(frame.code, "send"));
    const wire = [...this.onWire].find(([, w]) => w.messageId === frame.messageId);
    if (wire) {
      clearTimeout(wire[1].timer);
      this.onWire.delete(wire[0]);
    }
    this.flushOutbox();
  }

  // -- confirmations (ackMessages) ----------------------------------------------------------

  scheduleConfirmations() {
    if (this.toConfirm.size === 0 || this.confirmTimer) return;
    // The first at once, then at most one a second: a third of the rate limit at worst.
    const wait = Math.max(0, this.lastConfirm + CONFIRM_INTERVAL_MS - Date.now());
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = null;
      this.flushConfirmations();
    }, wait);
  }

  flushConfirmations() {
    if (this.toConfirm.size === 0 || this.confirmTimer) return;
    const ids = [...this.toConfirm].slice(0, 100);
    // Kept when the socket is closed: they go with the next connection.
    if (!this.connection.send({ action: "ackMessages", messageIds: ids })) return;
    for (const id of ids) this.toConfirm.delete(id);
    this.lastConfirm = Date.now();
    this.scheduleConfirmations();
  }

  // -- outbox -------------------------------------------------------------------------------

  send(conversationId, recipientId, content, replyToMessageId) {
    const queued = {
      messageId: uuid(), conversationId, recipientId, content, queuedAt: new Date().toISOString(),
    };
    if (replyToMessageId) queued.replyToMessageId = replyToMessageId;
    this.store.enqueue(queued);
    this.store.changed();
    this.flushOutbox();
  }

  /** Send the first queued message of each conversation that has none on the wire. */
  flushOutbox() {
    if (!this.connection.isOpen() || this.connection.state !== "online") return;
    for (const queued of this.store.outbox) {
      if (this.onWire.has(queued.conversationId)) continue;
      const frame = {
        action: "sendMessage", messageId: queued.messageId, conversationId: queued.conversationId,
        recipientId: queued.recipientId, content: queued.content,
      };
      if (queued.replyToMessageId) frame.replyToMessageId = queued.replyToMessageId;
      if (!this.connection.send(frame)) return;
      // No ack in time: resend, same messageId and content; the server stores it once.
      const timer = setTimeout(() => {
        this.onWire.delete(queued.conversationId);
        this.flushOutbox();
      }, ACK_TIMEOUT_MS);
      this.onWire.set(queued.conversationId, { messageId: queued.messageId, timer });
    }
  }

  // -- calls --------------------------------------------------------------------------------

  async refreshConversations() {
    const frame = await this.connection.call("listConversations", { limit: 50 }, "conversations");
    this.store.setConversations(frame.conversations || []);
    this.store.changed();
  }

  async findUsers(query) {
    const frame = await this.connection.call("findUsers", { query, limit: 10 }, "users");
    return frame.users || [];
  }

  deleteMessage(messageId) {
    // The answer is a messageDeleted push to both people; a refusal is an error naming the id.
    this.deleting.add(messageId);
    if (!this.connection.send({ action: "deleteMessage", messageId })) {
      this.notify("You are offline; delete the message again once the connection is back.");
    }
  }

  /** The next (older) history page of a conversation; false when there is none. */
  async loadHistory(conversationId) {
    if (!this.historySupported) return false;
    const state = this.store.history.get(conversationId) || { cursor: null, hasMore: true, loaded: false };
    if (!state.hasMore) return false;
    const fields = { conversationId, limit: HISTORY_PAGE_LIMIT };
    if (state.cursor) fields.cursor = state.cursor;
    let frame;
    try {
      frame = await this.connection.call("getHistory", fields, "history");
    } catch (error) {
      if (error instanceof ChatError && error.code === "VALIDATION_ERROR") {
        // A server of protocol v1 without getHistory: say so once, stop asking.
        this.historySupported = false;
        this.store.changed();
        return false;
      }
      this.notify(errorSentence(error.code, "history"));
      return false;
    }
    for (const message of frame.messages || []) this.store.upsert(message);
    this.store.history.set(conversationId, { cursor: frame.cursor, hasMore: Boolean(frame.hasMore), loaded: true });
    this.store.changed();
    this.markVisibleRead();
    return true;
  }

  // -- read receipts ------------------------------------------------------------------------

  show(conversationId) {
    this.visibleConversation = conversationId;
    this.markVisibleRead();
  }

  /** Mark what the person sees as read: everything received up to the newest one shown. */
  markVisibleRead() {
    const id = this.visibleConversation;
    if (!id || document.visibilityState !== "visible" || this.connection.state !== "online") return;
    const unread = this.store.unreadOf(id).filter((m) => m.timestamp);
    if (unread.length === 0) return;
    const newest = unread[unread.length - 1];
    if (this.lastMarked === newest.messageId) return;
    this.lastMarked = newest.messageId;
    this.connection
      .call("markRead", { conversationId: id, upTo: newest.messageId }, "marked")
      .then((frame) => {
        this.marked(frame);
        this.store.changed();
      })
      .catch(() => {
        this.lastMarked = null; // tried again on the next change or connection
      });
  }
}
