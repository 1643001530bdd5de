"""The web chat (web/), driven in a real headless Chromium against a local stack that serves it.

Two browser contexts are two people on two devices: each has its own storage, so its own
session and outbox. Every wait is one of Playwright's expectations, bounded by ``WAIT_MS``.
Screenshots of the two-person chat land in ``.local/screenshots/``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatclient import ChatSession, Target, conversation_id, ensure_user, sign_in

from .conftest import ROOT, start_stack

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
expect = sync_api.expect

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PASSWORD = "Passw0rd-web"
#: The longest any single expectation waits, in milliseconds.
WAIT_MS = 15_000
SCREENSHOTS = ROOT / ".local" / "screenshots"
VIEWPORT = {"width": 900, "height": 560}


def chromium_executable() -> str | None:
    """The system's Chromium (Playwright's own browser download is not used)."""
    candidates = [os.environ.get("CHROMIUM_EXECUTABLE"), shutil.which("chromium"), shutil.which("chromium-browser"),
                  "/usr/bin/chromium"]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


@dataclass
class Site:
    url: str
    target: Target


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    state_file = tmp_path_factory.mktemp("stack") / "stack.json"
    stack = start_stack(state_file, "--no-persist", "--site", str(ROOT / "web"), "--site-port", "0")
    try:
        state = json.loads(state_file.read_text())
        yield Site(str(state["site_url"]), Target.from_state_file(state_file))
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium executable found (apt-get install chromium, or set CHROMIUM_EXECUTABLE)")
    expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


@dataclass
class Person:
    username: str
    name: str
    sub: str


@pytest.fixture
def people(site: Site) -> Any:
    """Make fresh users (a unique username each, so every test has conversations of its own)."""

    def make(label: str) -> Person:
        username = f"{label}-{uuid.uuid4().hex[:6]}"
        name = label.title()  # unique usernames; display names may repeat, as in any pool
        ensure_user(site.target, username, PASSWORD, name=name, email=f"{username}@example.com")
        return Person(username, name, sign_in(site.target, username, PASSWORD).sub)

    return make


class ChatPage:
    """One person's tab of the web chat."""

    def __init__(self, context: Any, site: Site, person: Person) -> None:
        self.context = context
        self.site = site
        self.person = person
        self.page = context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def sign_in(self) -> ChatPage:
        self.page.goto(self.site.url)
        form = self.page.locator("#sign-in-form")
        form.locator("input[name=username]").fill(self.person.username)
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        self.expect_online()
        return self

    def reopen(self) -> ChatPage:
        """A new tab of the same browser profile: the session is kept, no sign-in."""
        again = ChatPage(self.context, self.site, self.person)
        again.page.goto(self.site.url)
        again.expect_online()
        return again

    def expect_online(self) -> None:
        expect(self.page.locator("#connection")).to_have_attribute("data-state", "online")

    def start_chat_with(self, other: Person) -> None:
        self.page.locator("#find-input").fill(other.username)
        self.page.locator("#find-form button").click()
        self.page.locator(".found-user", has_text=other.username).click()
        expect(self.page.locator("#conversation-title")).to_have_text(other.name)

    def open_chat_with(self, other: Person) -> None:
        self.page.locator(".conversation-item", has_text=other.name).click()
        expect(self.page.locator("#conversation-title")).to_have_text(other.name)

    def send(self, text: str) -> None:
        self.page.locator("#composer-input").fill(text)
        self.page.locator("#composer-input").press("Enter")

    def message(self, text: str) -> Any:
        return self.page.locator(".message", has_text=text)

    def contents(self) -> Any:
        return self.page.locator(".message .content")

    def outbox(self) -> list[Any]:
        return json.loads(self.page.evaluate(f"localStorage.getItem('chat.outbox.{self.person.sub}') || '[]'"))


def two_people(browser: Any, site: Site, people: Any) -> tuple[ChatPage, ChatPage]:
    # A window of a laptop's half screen: the screenshots show both side by side.
    alice = ChatPage(browser.new_context(viewport=VIEWPORT), site, people("alice")).sign_in()
    bob = ChatPage(browser.new_context(viewport=VIEWPORT), site, people("bob")).sign_in()
    return alice, bob


def save_side_by_side(browser: Any, left: ChatPage, right: ChatPage, name: str) -> Path:
    """Both people's windows in one picture (and each alone beside it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for page in (left, right):
        path = SCREENSHOTS / f"{name}-{page.person.username.split('-')[0]}.png"
        page.page.screenshot(path=path)
        shots.append(base64.b64encode(path.read_bytes()).decode())
    canvas = browser.new_page(viewport={"width": 2 * VIEWPORT["width"] + 16, "height": VIEWPORT["height"]})
    try:
        canvas.set_content(
            "<body style='margin:0;display:flex;gap:16px;background:#555'>"
            + "".join(f"<img src='data:image/png;base64,{shot}'>" for shot in shots)
            + "</body>"
        )
        path = SCREENSHOTS / f"{name}.png"
        canvas.screenshot(path=path)
    finally:
        canvas.close()
    return path


def test_a_live_message_both_ways_with_ticks_reaching_read(browser, site, people) -> None:
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    alice.send("Hi Bob, are you there?")
    expect(alice.message("Hi Bob, are you there?")).to_have_count(1)

    # Bob sees it in his list with one unread, then opens it: alice's tick goes to read.
    item = bob.page.locator(".conversation-item", has_text=alice.person.name)
    expect(item.locator(".unread")).to_have_text("1")
    expect(item.locator(".last")).to_have_text("Hi Bob, are you there?")
    bob.open_chat_with(alice.person)
    expect(bob.message("Hi Bob, are you there?")).to_have_count(1)
    expect(alice.message("Hi Bob, are you there?")).to_have_attribute("data-status", "read")
    expect(alice.message("Hi Bob, are you there?").locator(".tick")).to_have_text("✓✓ Read")

    # Bob replies to it; alice has the conversation open, so it is read at once.
    bob.message("Hi Bob, are you there?").locator("button.reply").click()
    bob.send("Yes! Here.")
    expect(alice.message("Yes! Here.")).to_have_count(1)
    expect(alice.message("Yes! Here.").locator(".quote")).to_have_text("Hi Bob, are you there?")
    expect(bob.message("Yes! Here.")).to_have_attribute("data-status", "read")
    save_side_by_side(browser, alice, bob, "web-chat")
    assert alice.errors == [] and bob.errors == []


def test_bob_away_gets_three_messages_in_order_once_when_he_comes_back(browser, site, people) -> None:
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    bob.page.close()
    texts = ["first while you were away", "second while you were away", "third while you were away"]
    for text in texts:
        alice.send(text)
    for text in texts:
        expect(alice.message(text)).to_have_attribute("data-status", "sent")

    bob = bob.reopen()
    item = bob.page.locator(".conversation-item", has_text=alice.person.name)
    expect(item.locator(".unread")).to_have_text("3")
    bob.open_chat_with(alice.person)
    expect(bob.contents()).to_have_text(texts)
    for text in texts:
        expect(alice.message(text)).to_have_attribute("data-status", "read")
    expect(bob.contents()).to_have_text(texts)  # still once each after the read receipts


def test_offline_the_page_says_so_and_sends_what_was_typed_once_back_online(browser, site, people) -> None:
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    alice.context.set_offline(True)
    expect(alice.page.locator("#connection")).to_have_text("offline")
    alice.send("typed on the train")
    expect(alice.message("typed on the train")).to_have_attribute("data-status", "sending")
    expect(alice.message("typed on the train").locator(".tick")).to_have_text("🕓")
    alice.context.set_offline(False)
    alice.expect_online()
    bob.open_chat_with(alice.person)
    expect(bob.message("typed on the train")).to_have_count(1)
    expect(alice.message("typed on the train")).to_have_attribute("data-status", "read")
    assert alice.outbox() == []


def test_a_message_in_the_outbox_at_a_reload_is_sent_once(browser, site, people) -> None:
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    alice.send("before the socket died")
    bob.open_chat_with(alice.person)
    expect(bob.message("before the socket died")).to_have_count(1)

    # The next socket is dead but does not know it: the sync and the list are answered
    # (empty), what the page sends then is swallowed, as by a network that died without a close.
    dead = {"on": True}
    swallowed: list[dict[str, Any]] = []

    def socket_route(ws: Any) -> None:
        if not dead["on"]:
            ws.connect_to_server()
            return

        def on_message(text: str | bytes) -> None:
            frame = json.loads(text)
            if frame["action"] == "syncMessages":
                ws.send(json.dumps({"type": "sync", "messages": [], "cursor": None, "hasMore": False,
                                    "requestId": frame["requestId"]}))
            elif frame["action"] == "listConversations":
                ws.send(json.dumps({"type": "conversations", "conversations": [], "cursor": None, "hasMore": False,
                                    "requestId": frame["requestId"]}))
            elif frame["action"] == "sendMessage":
                swallowed.append(frame)

        ws.on_message(on_message)

    alice.context.route_web_socket(re.compile(r"^wss?://"), socket_route)
    alice.context.set_offline(True)
    expect(alice.page.locator("#connection")).to_have_attribute("data-state", "offline")
    alice.context.set_offline(False)
    alice.expect_online()
    alice.send("sent into a dead socket")
    expect(alice.message("sent into a dead socket")).to_have_attribute("data-status", "sending")
    assert [frame["content"] for frame in swallowed] == ["sent into a dead socket"]
    queued = alice.outbox()
    assert [entry["messageId"] for entry in queued] == [swallowed[0]["messageId"]]

    # The network is back; the person reloads the page before any ack came.
    dead["on"] = False
    alice.page.reload()
    alice.expect_online()
    alice.open_chat_with(bob.person)
    expect(alice.message("sent into a dead socket")).to_have_count(1)
    expect(alice.message("sent into a dead socket")).not_to_have_attribute("data-status", "sending")
    expect(bob.message("sent into a dead socket")).to_have_count(1)
    expect(bob.message("sent into a dead socket")).to_have_attribute("data-message-id", swallowed[0]["messageId"])
    assert alice.outbox() == []
    # A fresh look from the server's side: bob's new tab, filled from history, holds it once.
    bob = bob.reopen()
    bob.open_chat_with(alice.person)
    expect(bob.contents()).to_have_text(["before the socket died", "sent into a dead socket"])


def test_a_new_device_fills_the_conversation_from_history_page_by_page(browser, site, people) -> None:
    alice, bob = people("alice"), people("bob")
    # 35 messages, both directions, more than the page's first history page (30); each
    # sent after the previous one's ack, so their order is the order written here.
    texts = [f"history {index:02d} from {'alice' if index % 2 == 0 else 'bob'}" for index in range(35)]
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(site.target, sign_in(site.target, alice.username, PASSWORD).id_token, confirm=False) as a, \
            ChatSession(site.target, sign_in(site.target, bob.username, PASSWORD).id_token, confirm=False) as b:
        for index, text in enumerate(texts):
            session, recipient = (a, bob) if index % 2 == 0 else (b, alice)
            message_id = session.send_message(conversation, recipient.sub, text)
            session.receive_until("ack")
        # Alice read them on her first device, so none is pending for her: the new device
        # gets them from history alone.
        a.send("markRead", conversationId=conversation, upTo=message_id)
        a.receive_until("marked")

    # Alice on a new device: nothing stored there; the newest page comes first.
    device = ChatPage(browser.new_context(viewport=VIEWPORT), site, alice).sign_in()
    device.open_chat_with(bob)
    expect(device.contents()).to_have_text(texts[-30:])
    older = device.page.locator("#older")
    expect(older).to_be_visible()
    older.click()
    expect(device.contents()).to_have_text(texts)
    expect(older).to_be_hidden()
    assert device.errors == []


def test_a_new_device_shows_pending_messages_once_beside_history(browser, site, people) -> None:
    alice, bob = people("alice"), people("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(site.target, sign_in(site.target, bob.username, PASSWORD).id_token, confirm=False) as b:
        for text in ("pending one", "pending two"):
            b.send_message(conversation, alice.sub, text)
            b.receive_until("ack")
    # Alice's new device gets them twice, in its sync and in the history page: one copy each.
    device = ChatPage(browser.new_context(viewport=VIEWPORT), site, alice).sign_in()
    device.open_chat_with(bob)
    expect(device.contents()).to_have_text(["pending one", "pending two"])


def test_an_error_frame_is_shown_as_a_sentence(browser, site, people) -> None:
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    alice.send("x" * 4001)
    notice = alice.page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_text("This message is too long to send: the limit is 4000 characters.")
    failed = alice.page.locator(".message.mine")
    expect(failed).to_have_attribute("data-status", "failed")
    expect(failed.locator(".failure")).to_have_text("This message is too long to send: the limit is 4000 characters.")
    assert alice.outbox() == []
    # The next message goes out as usual: the refused one does not block the conversation.
    alice.send("a shorter one")
    expect(bob.page.locator(".conversation-item", has_text=alice.person.name).locator(".last")).to_have_text(
        "a shorter one")


@pytest.mark.parametrize("gateway_says", ["Forbidden", "Internal server error", "Endpoint request timed out"])
def test_api_gateways_own_frames_read_as_a_server_problem(browser, site, people, gateway_says: str) -> None:
    person = people("erin")
    page = ChatPage(browser.new_context(viewport=VIEWPORT), site, person)

    def socket_route(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_page(text: str | bytes) -> None:
            # API Gateway answers a frame itself, without `type`, when its Lambda failed.
            if json.loads(text).get("action") == "findUsers":
                ws.send(json.dumps({"message": gateway_says, "connectionId": "abc=", "requestId": "def="}))
            else:
                server.send(text)

        ws.on_message(from_page)

    page.context.route_web_socket(re.compile(r"^wss?://"), socket_route)
    # Online once the sync and the list are in: the search is then the only call waiting,
    # and a frame without our requestId goes to the oldest call waiting (docs/client.md).
    page.sign_in()
    page.page.locator("#find-input").fill("anyone")
    page.page.locator("#find-form button").click()
    expect(page.page.locator("#notice")).to_have_text("The server had a problem; try again in a moment.")
    page.expect_online()  # the connection stays up, as API Gateway's does


def test_every_error_code_has_a_sentence_for_people(browser, site) -> None:
    page = browser.new_context().new_page()
    page.goto(site.url)
    sentences = page.evaluate(
        """async () => { const { errorSentence } = await import('./protocol.js');
          const codes = ['VALIDATION_ERROR', 'FORBIDDEN', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'RATE_LIMITED', 'INTERNAL',
                         'SOMETHING_NEW'];
          const out = {};
          for (const code of codes) for (const about of ['send', 'delete', 'history', 'find', ''])
            out[`${code}/${about}`] = errorSentence(code, about);
          return out; }"""
    )
    for key, sentence in sentences.items():
        code = key.split("/")[0]
        assert sentence.endswith(".") and sentence[0].isupper(), key
        assert code not in sentence and "{" not in sentence, key


def test_delete_shows_as_deleted_on_both_sides(browser, site, people) -> None:
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    alice.send("I did not mean that")
    bob.open_chat_with(alice.person)
    expect(bob.message("I did not mean that")).to_have_count(1)
    alice.message("I did not mean that").locator("button.delete").click()
    for page in (alice, bob):
        expect(page.page.locator(".message.deleted .content")).to_have_text("This message was deleted")
    expect(bob.page.locator(".conversation-item .last")).to_have_text("Message deleted")


def test_a_new_person_signs_up_confirms_with_any_code_locally_and_is_online(browser, site) -> None:
    username = f"carol-{uuid.uuid4().hex[:6]}"
    page = browser.new_context().new_page()
    page.goto(site.url)
    form = page.locator("#sign-up-form")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=name]").fill("Carol New")
    form.locator("input[name=email]").fill(f"{username}@example.com")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    expect(page.locator("#confirm-hint")).to_contain_text("any code")
    page.locator("#confirm-form input[name=code]").fill("000000")
    page.locator("#confirm-form button[type=submit]").click()
    expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    expect(page.locator("#whoami")).to_have_text("Signed in as Carol New")


def test_a_wrong_password_is_a_sentence(browser, site, people) -> None:
    person = people("dave")
    page = browser.new_context().new_page()
    page.goto(site.url)
    page.locator("#sign-in-form input[name=username]").fill(person.username)
    page.locator("#sign-in-form input[name=password]").fill("Wrong-pass1")
    page.locator("#sign-in-form button[type=submit]").click()
    expect(page.locator("#notice")).to_have_text("Wrong username or password.")
    # Signed out, there is no connection to speak of: no "offline" badge.
    expect(page.locator("#connection")).to_be_hidden()


def test_delivery_time_between_two_browsers(browser, site, people, capsys) -> None:
    """A figure, not an assertion: from alice pressing Enter to the message in bob's page."""
    alice, bob = two_people(browser, site, people)
    alice.start_chat_with(bob.person)
    alice.send("warm-up")
    bob.open_chat_with(alice.person)
    expect(bob.message("warm-up")).to_have_count(1)
    delays = []
    for index in range(7):
        text = f"timed {index}"
        # Both contexts run in one browser process: their clocks are the same clock.
        bob.page.evaluate(
            """text => { window.__seen = null; new MutationObserver((_, observer) => {
                if ([...document.querySelectorAll('.message .content')].some(n => n.textContent === text)) {
                  window.__seen = performance.timeOrigin + performance.now(); observer.disconnect(); }
              }).observe(document.getElementById('messages'), {childList: true, subtree: true}); }""",
            text,
        )
        alice.page.locator("#composer-input").fill(text)
        sent = alice.page.evaluate(
            """() => { const at = performance.timeOrigin + performance.now();
                document.getElementById('composer').requestSubmit(); return at; }"""
        )
        expect(bob.message(text)).to_have_count(1)
        delays.append(bob.page.evaluate("window.__seen") - sent)
    # A reopened tab: page load, session restored, socket, sync, list, then "online".
    reopens = []
    for _ in range(3):
        started = time.perf_counter()
        again = bob.reopen()
        reopens.append((time.perf_counter() - started) * 1000)
        again.page.close()
    with capsys.disabled():
        print(f"\nweb chat delivery, alice's Enter to bob's screen: median {statistics.median(delays):.1f} ms, "
              f"min {min(delays):.1f}, max {max(delays):.1f} ({len(delays)} messages); a reopened tab online in "
              f"{statistics.median(reopens):.0f} ms (median of {len(reopens)})")
