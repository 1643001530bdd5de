// What the page knows: messages (one copy per messageId), conversations, and the outbox,
// which lives in localStorage so that a message typed before a reload or a crash is still
// sent, with the same messageId (docs/client.md, section 6).

import { laterStatus } from "./protocol.js";

export class Store {
  constructor(me, storage = window.localStorage) {
    this.me = me; // {sub, name, username}
    this.storage = storage;
    this.outboxKey = `chat.outbox.${me.sub}`;
    this.messages = new Map(); // messageId -> message (protocol shape, plus local fields)
    this.conversations = new Map(); // conversationId -> {conversationId, otherUser, lastMessage, unreadCount, updatedAt}
    this.history = new Map(); // conversationId -> {cursor, hasMore, loaded}
    this.outbox = this.readOutbox();
    this.listeners = new Set();
    for (const queued of this.outbox) this.messages.set(queued.messageId, this.queuedMessage(queued));
  }

  subscribe(listener) {
    this.listeners.add(listener);
  }

  changed() {
    for (const listener of this.listeners) listener();
  }

  // -- messages -----------------------------------------------------------------------------

  /** Keep one copy per messageId; returns true when the message was not known. */
  upsert(message) {
    const known = this.messages.get(message.messageId);
    if (!known) {
      const stored = { ...message };
      this.messages.set(message.messageId, stored);
      this.touchConversation(stored);
      return true;
    }
    // A copy (live push, sync page, history page) may be older or newer: statuses only move
    // forward, a deletion stays, and the server's timestamp replaces a queued one.
    known.status = laterStatus(known.status, message.status);
    if (message.isDeleted) Object.assign(known, { isDeleted: true, content: "" });
    if (message.timestamp) known.timestamp = message.timestamp;
    return false;
  }

  setStatus(messageId, status) {
    const known = this.messages.get(messageId);
    if (!known) return false;
    const next = laterStatus(known.status, status);
    if (next === known.status) return false;
    known.status = next;
    return true;
  }

  markDeleted(messageId) {
    const known = this.messages.get(messageId);
    if (!known) return false;
    Object.assign(known, { isDeleted: true, content: "" });
    return true;
  }

  /** A conversation's messages in server order (timestamp); queued ones last, in typing order. */
  messagesOf(conversationId) {
    const list = [...this.messages.values()].filter((m) => m.conversationId === conversationId);
    return list.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
  }

  // -- conversations ------------------------------------------------------------------------

  setConversations(conversations) {
    for (const conversation of conversations) {
      const last = conversation.lastMessage;
      if (last) this.upsert(last);
      // The list shows the store's copy, which later frames (status, deletion) change.
      const lastMessage = last ? this.messages.get(last.messageId) : null;
      this.conversations.set(conversation.conversationId, { ...conversation, lastMessage });
    }
  }

  /** A conversation the person opens from a search, before any message exists. */
  ensureConversation(conversationId, otherUser) {
    if (!this.conversations.has(conversationId)) {
      this.conversations.set(conversationId, {
        conversationId, otherUser, lastMessage: null, unreadCount: 0, updatedAt: "",
      });
    }
    return this.conversations.get(conversationId);
  }

  touchConversation(message) {
    const mine = message.senderId === this.me.sub;
    const otherId = mine ? message.recipientId : message.senderId;
    const conversation = this.ensureConversation(message.conversationId, {
      userId: otherId, name: mine ? null : message.senderName,
    });
    if (!conversation.otherUser.name && !mine) conversation.otherUser.name = message.senderName;
    const current = conversation.lastMessage;
    if (!current || sortKey(message) >= sortKey(current)) {
      conversation.lastMessage = message;
      conversation.updatedAt = message.timestamp || conversation.updatedAt;
    }
  }

  sortedConversations() {
    return [...this.conversations.values()].sort((a, b) => (b.updatedAt || "~").localeCompare(a.updatedAt || "~"));
  }

  /** Received messages of a conversation that are not read yet. */
  unreadOf(conversationId) {
    return this.messagesOf(conversationId).filter(
      (m) => m.senderId !== this.me.sub && m.status !== "read" && !m.isDeleted,
    );
  }

  // -- outbox -------------------------------------------------------------------------------

  readOutbox() {
    try {
      const saved = JSON.parse(this.storage.getItem(this.outboxKey) || "[]");
      return Array.isArray(saved) ? saved : [];
    } catch {
      return [];
    }
  }

  saveOutbox() {
    this.storage.setItem(this.outboxKey, JSON.stringify(this.outbox));
  }

  /** Queue a message: saved before anything is sent, so a reload cannot lose it. */
  enqueue(queued) {
    this.outbox.push(queued);
    this.saveOutbox();
    const message = this.queuedMessage(queued);
    this.messages.set(queued.messageId, message);
    this.touchConversation(message);
  }

  /** Remove from the outbox (acked, or refused for good). */
  dequeue(messageId) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((q) => q.messageId !== messageId);
    if (this.outbox.length !== before) this.saveOutbox();
    return this.outbox.length !== before;
  }

  queuedMessage(queued) {
    return {
      messageId: queued.messageId,
      conversationId: queued.conversationId,
      senderId: this.me.sub,
      senderName: this.me.name,
      recipientId: queued.recipientId,
      content: queued.content,
      replyToMessageId: queued.replyToMessageId || null,
      timestamp: null,
      queuedAt: queued.queuedAt,
      status: "sending",
      isDeleted: false,
    };
  }
}

// ISO-8601 UTC timestamps sort as strings; "~" sorts after any digit, so queued ones come last.
function sortKey(message) {
  return message.timestamp || `~${message.queuedAt || ""}`;
}
