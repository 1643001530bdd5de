// The page: sign-in, the session (tokens kept across reloads, refreshed before they expire),
// and the view, drawn from the store after every change.

import { Cognito, CognitoError, SignInRequired, claimsOf } from "./cognito.js";
import { loadConfig } from "./config.js";
import { Connection } from "./connection.js";
import { conversationIdFor, errorSentence } from "./protocol.js";
import { Store } from "./store.js";
import { MessageSync } from "./sync.js";

const SESSION_KEY = "chat.session";
// Refresh the ID token 5 minutes before it expires, or halfway through its life if sooner.
const REFRESH_MARGIN_S = 300;
const NOTICE_MS = 8000;

const $ = (id) => document.getElementById(id);
const state = {
  config: null,
  cognito: null,
  session: null, // {tokens: {idToken, accessToken, refreshToken}}
  me: null,
  store: null,
  connection: null,
  sync: null,
  current: null, // the conversation shown
  replyTo: null,
  refreshTimer: null,
};

// -- session --------------------------------------------------------------------------------

function meOf(tokens) {
  const claims = claimsOf(tokens.idToken);
  const username = claims["cognito:username"] || claims.sub;
  return { sub: claims.sub, name: claims.name || username, username };
}

function refreshDue(tokens) {
  const { exp, iat } = claimsOf(tokens.idToken);
  const life = exp - (iat || exp - 3600);
  return Math.min(exp - REFRESH_MARGIN_S, (iat || exp - 3600) + life / 2) * 1000;
}

async function refreshTokens() {
  try {
    state.session.tokens = await state.cognito.refresh(state.session.tokens.refreshToken);
    localStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
    scheduleRefresh();
  } catch (error) {
    if (error instanceof SignInRequired) {
      signOut("Your session has ended; sign in again.");
      throw error;
    }
    // The network: the current token may still do; the next connect tries again.
  }
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  const wait = Math.max(0, refreshDue(state.session.tokens) - Date.now());
  state.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), wait);
}

/** The token for the next handshake; refreshed first when due, or when a handshake failed. */
async function getToken(forceRefresh) {
  if (!state.session) throw new SignInRequired("signed out");
  if (forceRefresh || Date.now() >= refreshDue(state.session.tokens)) await refreshTokens();
  return state.session.tokens.idToken;
}

function startSession(tokens) {
  state.session = { tokens };
  localStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  startChat();
}

function signOut(sentence) {
  clearTimeout(state.refreshTimer);
  state.connection?.stop();
  localStorage.removeItem(SESSION_KEY);
  // The outbox stays (it is kept per user): it is sent when that person signs in again.
  Object.assign(state, { session: null, me: null, store: null, connection: null, sync: null, current: null });
  showSignIn();
  if (sentence) notify(sentence);
}

// -- sign-in view ---------------------------------------------------------------------------

function showSignIn() {
  $("chat-view").hidden = true;
  $("sign-out").hidden = true;
  $("whoami").textContent = "";
  $("sign-in-view").hidden = false;
  renderConnection("offline");
  // Nobody is signed in: a connection state would only say "offline" to someone who has
  // not asked to connect yet.
  $("connection").hidden = true;
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

async function guarded(form, work) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await work(formValues(form));
  } catch (error) {
    notify(error instanceof CognitoError ? error.message : "Something went wrong; try again.");
    if (error.type === "UserNotConfirmedException") showConfirm(formValues(form).username);
  } finally {
    button.disabled = false;
  }
}

function showConfirm(username) {
  const form = $("confirm-form");
  form.hidden = false;
  form.elements.username.value = username || "";
  $("confirm-hint").textContent = state.config.local
    ? "On the local stack no email is sent and any code confirms the account: type 000000."
    : "Cognito has emailed you a code; type it here.";
  form.elements.code.focus();
}

function wireSignIn() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(event.target, async ({ username, password }) => {
      startSession(await state.cognito.signIn(username.trim(), password));
    });
  });
  $("sign-up-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(event.target, async ({ username, password, name, email }) => {
      await state.cognito.signUp(username.trim(), password, name.trim(), email.trim());
      state.pendingPassword = password; // to sign in right after the confirmation
      showConfirm(username.trim());
    });
  });
  $("confirm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(event.target, async ({ username, code }) => {
      await state.cognito.confirmSignUp(username.trim(), code.trim());
      event.target.hidden = true;
      if (state.pendingPassword) {
        startSession(await state.cognito.signIn(username.trim(), state.pendingPassword));
        state.pendingPassword = null;
      } else {
        notify("Your account is confirmed; sign in.");
      }
    });
  });
  $("sign-out").addEventListener("click", () => signOut());
}

// -- chat -----------------------------------------------------------------------------------

function startChat() {
  state.me = meOf(state.session.tokens);
  state.store = new Store(state.me);
  state.connection = new Connection({
    url: state.config.websocketUrl,
    getToken,
    onOpen: () => state.sync.connected(),
    onFrame: (frame) => state.sync.handle(frame),
    onState: (connectionState) => {
      renderConnection(connectionState);
      state.sync.flushOutbox();
    },
  });
  state.sync = new MessageSync(state.store, state.connection, notify);
  state.store.subscribe(render);
  $("sign-in-view").hidden = true;
  $("chat-view").hidden = false;
  $("sign-out").hidden = false;
  $("connection").hidden = false;
  $("whoami").textContent = `Signed in as ${state.me.name}`;
  scheduleRefresh();
  state.connection.start();
  render();
}

function openConversation(conversationId) {
  state.current = conversationId;
  state.replyTo = null;
  state.sync.show(conversationId);
  const history = state.store.history.get(conversationId);
  if (!history?.loaded) state.sync.loadHistory(conversationId);
  render();
  scrollToEnd();
  $("composer-input").focus();
}

function wireChat() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendTyped();
  });
  $("composer-input").addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line.
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      sendTyped();
    }
  });
  $("find-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = $("find-input").value.trim();
    if (!query) return;
    try {
      renderFound(await state.sync.findUsers(query));
    } catch (error) {
      notify(error.code === "VALIDATION_ERROR" ? "Search for a name without quotes or backslashes." :
        errorSentence(error.code, "find"));
    }
  });
  $("older").addEventListener("click", async () => {
    const list = $("messages");
    const fromBottom = list.scrollHeight - list.scrollTop;
    await state.sync.loadHistory(state.current);
    list.scrollTop = list.scrollHeight - fromBottom; // keep the messages in view where they were
  });
  $("reply-cancel").addEventListener("click", () => {
    state.replyTo = null;
    render();
  });
  document.addEventListener("visibilitychange", () => state.sync?.markVisibleRead());
}

function sendTyped() {
  const input = $("composer-input");
  const content = input.value;
  const conversation = state.store.conversations.get(state.current);
  if (!content.trim() || !conversation) return;
  state.sync.send(state.current, conversation.otherUser.userId, content, state.replyTo);
  input.value = "";
  state.replyTo = null;
  render();
  scrollToEnd();
}

// -- view -----------------------------------------------------------------------------------

const CONNECTION_WORDS = { online: "online", reconnecting: "reconnecting…", offline: "offline" };

function renderConnection(connectionState) {
  const badge = $("connection");
  badge.dataset.state = connectionState;
  badge.textContent = CONNECTION_WORDS[connectionState] || connectionState;
}

let noticeTimer = null;

function notify(sentence) {
  const notice = $("notice");
  notice.textContent = sentence;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice.hidden = true;
  }, NOTICE_MS);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function render() {
  if (!state.store) return;
  renderConversations();
  renderConversation();
}

function nameOf(conversation) {
  // null from the server: a user the pool no longer knows; locally: not listed yet.
  return conversation.otherUser?.name || "Unknown person";
}

function preview(message) {
  if (!message) return "No messages yet";
  const text = message.isDeleted ? "Message deleted" : message.content;
  return message.senderId === state.me.sub ? `You: ${text}` : text;
}

function renderConversations() {
  const items = state.store.sortedConversations().map((conversation) => {
    const unread = conversation.conversationId === state.current ? 0 : conversation.unreadCount || 0;
    return el(
      "li",
      {},
      el(
        "button",
        {
          type: "button",
          class: `conversation-item${conversation.conversationId === state.current ? " current" : ""}`,
          "data-conversation-id": conversation.conversationId,
          onclick: () => openConversation(conversation.conversationId),
        },
        el("span", { class: "name", textContent: nameOf(conversation) }),
        unread ? el("span", { class: "unread", textContent: String(unread), title: `${unread} unread` }) : null,
        el("span", { class: "last", textContent: preview(conversation.lastMessage) }),
      ),
    );
  });
  $("conversation-list").replaceChildren(...items);
}

function renderFound(users) {
  const items = users.map((user) =>
    el(
      "li",
      {},
      el("button", {
        type: "button",
        class: "found-user",
        textContent: `${user.name || user.username} (${user.username})`,
        onclick: () => {
          const id = conversationIdFor(state.me.sub, user.userId);
          state.store.ensureConversation(id, { userId: user.userId, name: user.name || user.username });
          $("find-results").replaceChildren();
          $("find-input").value = "";
          openConversation(id);
        },
      }),
    ),
  );
  if (items.length === 0) items.push(el("li", { class: "hint", textContent: "Nobody by that name." }));
  $("find-results").replaceChildren(...items);
}

const TICKS = {
  sending: ["🕓", "waiting to be sent"],
  sent: ["✓", "sent"],
  delivered: ["✓✓", "delivered"],
  read: ["✓✓ Read", "read"],
  failed: ["!", "not sent"],
};

function renderMessage(message) {
  const mine = message.senderId === state.me.sub;
  const quoted = message.replyToMessageId ? state.store.messages.get(message.replyToMessageId) : null;
  const [tick, tickWords] = TICKS[message.status] || ["", message.status];
  const time = message.timestamp ? new Date(message.timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  return el(
    "li",
    {
      class: `message ${mine ? "mine" : "theirs"}${message.isDeleted ? " deleted" : ""}`,
      "data-message-id": message.messageId,
      "data-status": message.status,
    },
    message.replyToMessageId
      ? el("div", { class: "quote", textContent: quoted ? (quoted.isDeleted ? "Message deleted" : quoted.content) : "An earlier message" })
      : null,
    el("div", { class: "content", textContent: message.isDeleted ? "This message was deleted" : message.content }),
    message.failure ? el("div", { class: "failure", textContent: message.failure }) : null,
    el(
      "div",
      { class: "meta" },
      el("time", { textContent: time }),
      mine ? el("span", { class: `tick ${message.status}`, textContent: tick, title: tickWords, "data-tick": tickWords }) : null,
      message.isDeleted || !message.timestamp
        ? null
        : el("button", { type: "button", class: "reply", textContent: "Reply", onclick: () => startReply(message) }),
      mine && !message.isDeleted && message.timestamp
        ? el("button", { type: "button", class: "delete", textContent: "Delete", onclick: () => state.sync.deleteMessage(message.messageId) })
        : null,
    ),
  );
}

function startReply(message) {
  state.replyTo = message.messageId;
  render();
  $("composer-input").focus();
}

function renderConversation() {
  const conversation = state.current ? state.store.conversations.get(state.current) : null;
  $("conversation").hidden = !conversation;
  $("empty").hidden = Boolean(conversation);
  if (!conversation) return;
  $("conversation-title").textContent = nameOf(conversation);
  const list = $("messages");
  const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.replaceChildren(...state.store.messagesOf(state.current).map(renderMessage));
  if (atEnd) scrollToEnd();
  const history = state.store.history.get(state.current);
  $("older").hidden = !state.sync.historySupported || !history?.loaded || !history.hasMore;
  $("history-note").hidden = state.sync.historySupported;
  $("history-note").textContent = "Older messages cannot be shown: this server has no history.";
  const replied = state.replyTo ? state.store.messages.get(state.replyTo) : null;
  $("reply-bar").hidden = !replied;
  $("reply-text").textContent = replied ? `Replying to: ${replied.content}` : "";
}

function scrollToEnd() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

// -- start ----------------------------------------------------------------------------------

async function main() {
  wireSignIn();
  wireChat();
  try {
    state.config = await loadConfig();
  } catch (error) {
    notify(error.message);
    return;
  }
  state.cognito = new Cognito(state.config.cognitoEndpoint, state.config.clientId);
  $("local-users-hint").hidden = !state.config.local;
  const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
  if (saved?.tokens?.idToken) {
    state.session = saved;
    startChat();
  } else {
    showSignIn();
  }
}

main();
