"""Property-based fuzzing of what a client can send the gateway, without sockets.

Frames: route selection and event building against arbitrary JSON (deep, wide, unicode edge
cases, NUL, wrong types for the selection key) and arbitrary text, with an oracle for the
route AWS picks; the WebSocket protocol with the gateway's limits against messages whose
sizes sit around the 32 KB frame and 128 KB message limits. ``@connections``: the HTTP/1.1
parser and the management API against arbitrary bytes and near-valid requests.

A WebSocket text frame is UTF-8 (invalid UTF-8 closes the connection with 1007 before the
gateway sees it), so a body reaching route selection is a ``str`` without lone surrogates;
a lone surrogate can still arrive JSON-escaped (``"\\ud800"``), and does here.

``--hypothesis-show-statistics`` prints the examples tried and the outcomes (``event``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from wsstack.gateway.core import (
    Connection,
    Limits,
    StageContext,
    _parse_json_iteratively,
    build_message_event,
    select_route,
)
from wsstack.gateway.management import ManagementApi
from wsstack.gateway.server import websocket_protocol
from wsstack.http11 import ServerProtocol
from wsstack.model import Route, WebSocketApi

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ROUTE_KEYS = ("$connect", "$disconnect", "$default", "sendMessage", "42", "true", "false", "1.5", "null", "\x00", "é")
#: Keys a message can never select: AWS keeps them for the connection's lifecycle.
LIFECYCLE = ("$connect", "$disconnect")
STAGE = StageContext(api_id="abcdefghij", stage="dev", domain_name="127.0.0.1:1")
CONNECTION = Connection(connection_id="L0SM9cOFvHcCIhw=", connected_at=1_700_000_000.0, source_ip="127.0.0.1")


def make_api(*, default: bool) -> WebSocketApi:
    routes = {key: Route(key, "Fn") for key in ROUTE_KEYS if key != "$default" or default}
    return WebSocketApi("Api", "api", "$request.body.action", routes, ("dev",))


APIS = {True: make_api(default=True), False: make_api(default=False)}

# ------------------------------------------------------------------------ JSON strategies

#: Any code point, lone surrogates and NUL made likely.
CHARACTERS = st.characters(codec=None) | st.integers(0xD800, 0xDFFF).map(chr) | st.just("\x00")
TEXT = st.text(CHARACTERS, max_size=20)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TEXT, inner, max_size=6),
                    max_leaves=20)
#: What "action" holds: a route key (matching or not), or a value of any type.
ACTIONS = st.sampled_from([*ROUTE_KEYS, "SendMessage", "sendMessage ", "", "42.0", "True"]) | JSON


def frame_text(document: Any, ascii_only: bool) -> str:
    """``document`` as a client would send it in a text frame: valid UTF-8."""
    text = json.dumps(document, ensure_ascii=ascii_only)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A raw lone surrogate cannot be sent as UTF-8; a client escapes it.
        text = json.dumps(document)
    return text


def expected_route(document: Any, *, default: bool) -> str | None:
    """The oracle: the route API Gateway picks for this document."""
    fallback = "$default" if default else None
    if not isinstance(document, dict):
        return fallback
    value = document.get("action")
    if isinstance(value, bool):
        key: str | None = "true" if value else "false"
    elif isinstance(value, int | float):
        key = json.dumps(value)
    elif isinstance(value, str):
        key = value
    else:
        key = None  # null, objects and arrays select nothing
    if key in ROUTE_KEYS and key not in LIFECYCLE and key != "$default":
        return key
    return fallback


def routed(body: str, *, default: bool) -> str | None:
    route = select_route(APIS[default], body)
    return None if route is None else route.route_key


def assert_event_builds(body: str, route_key: str) -> None:
    built = build_message_event(STAGE, CONNECTION, route_key=route_key, body=body, request_id="r", message_id="m")
    assert built["body"] == body
    # The runtime hands the event to the Lambda as UTF-8 JSON.
    assert json.loads(json.dumps(built).encode("utf-8"))["body"] == body


def outcome(route: str | None) -> str:
    return "Forbidden" if route is None else ("$default" if route == "$default" else "matched route")


# ----------------------------------------------------------------- route selection fuzz


@FUZZ
@given(
    action=ACTIONS,
    others=st.dictionaries(TEXT, JSON, max_size=5),
    has_action=st.booleans(),
    ascii_only=st.booleans(),
    default=st.booleans(),
)
def test_any_object_goes_to_the_route_its_action_names(
    action: Any, others: dict[str, Any], has_action: bool, ascii_only: bool, default: bool
) -> None:
    document = {**others, "action": action} if has_action else others
    body = frame_text(document, ascii_only)
    route = routed(body, default=default)
    event(outcome(route))
    assert route == expected_route(document, default=default)
    assert_event_builds(body, route or "-")


@FUZZ
@given(document=JSON, ascii_only=st.booleans(), default=st.booleans())
def test_any_json_value_is_routed_as_aws_does(document: Any, ascii_only: bool, default: bool) -> None:
    body = frame_text(document, ascii_only)
    route = routed(body, default=default)
    event(f"{type(document).__name__}: {outcome(route)}")
    assert route == expected_route(document, default=default)


@FUZZ
@given(
    body=st.text(st.characters(codec="utf-8"), max_size=200)
    | st.text(st.sampled_from('{}[]:,"01 ae\x00'), max_size=12),
    default=st.booleans(),
)
def test_arbitrary_text_never_raises(body: str, default: bool) -> None:
    try:
        document: Any = json.loads(body)
    except ValueError:
        document = None  # not JSON: $default, like a non-object
    route = routed(body, default=default)
    event("JSON" if document is not None else "not JSON")
    assert route == expected_route(document, default=default)
    assert_event_builds(body, route or "-")


@SLOW_FUZZ
@given(
    action=ACTIONS,
    depth=st.integers(1, 20_000),
    shape=st.sampled_from(["array", "object", "mixed"]),
    broken=st.booleans(),
    default=st.booleans(),
)
def test_nesting_of_any_depth_is_routed(action: Any, depth: int, shape: str, broken: bool, default: bool) -> None:
    opening = {"array": "[", "object": '{"k":', "mixed": '[{"k":'}[shape]
    closing = {"array": "]", "object": "}", "mixed": "}]"}[shape]
    inner = "1" if shape != "array" else ""
    deep = opening * depth + inner + closing * (depth - int(broken))
    body = '{"action": ' + json.dumps(action) + ', "deep": ' + deep + "}"
    route = routed(body, default=default)
    event(f"{'malformed' if broken else 'valid'}: {outcome(route)}")
    document = None if broken else {"action": action}
    assert route == expected_route(document, default=default)
    # Alone, the nesting is an array, an object without "action", or not JSON: never a match.
    assert routed(deep, default=default) == ("$default" if default else None)


# ---------------------------------------------------------- the recursion-free parser


def parsed(parse: Any, text: str) -> str:
    try:
        return "value " + repr(parse(text))
    except ValueError:
        return "not JSON"


@FUZZ
@given(
    text=JSON.map(json.dumps)
    | st.text(st.sampled_from('{}[]:," \\0123456789.-+eEtruefalsnNI\x00\t\ré'), max_size=60)
    | st.builds(lambda a, b: a + b, JSON.map(json.dumps), st.text(max_size=3))
)
def test_the_recursion_free_parser_agrees_with_json_loads(text: str) -> None:
    expected = parsed(json.loads, text)
    event(expected.split()[0])
    assert parsed(_parse_json_iteratively, text) == expected


# ------------------------------------------------------------------ frame and message sizes

LIMITS = Limits()
KB = 1024


@st.composite
def sized_messages(draw: st.DrawFn) -> tuple[bytes, int]:
    """A UTF-8 message whose byte length sits near a limit, and the fragment size to send it in."""
    target = draw(st.sampled_from([32 * KB, 128 * KB, 1, 100])) + draw(st.integers(-3, 3))
    tail = draw(st.sampled_from(["", "é", "😀"]))  # multi-byte characters, split across fragments
    prefix = '{"action": "sendMessage", "p": "'
    padding = max(0, target - len(prefix.encode()) - len(tail.encode()) - 2)
    message = (prefix + "a" * padding + tail + '"}').encode()
    fragment = draw(st.sampled_from([len(message), 32 * KB, 32 * KB + 1, 32 * KB - 1, 1000, 4097]))
    return message, max(1, fragment)


@SLOW_FUZZ
@given(sized=sized_messages())
def test_messages_around_the_size_limits_are_delivered_or_closed_1009(sized: tuple[bytes, int]) -> None:
    message, fragment = sized
    protocol = websocket_protocol(LIMITS, state=State.OPEN)
    chunks = [message[i : i + fragment] for i in range(0, len(message), fragment)] or [b""]
    for index, chunk in enumerate(chunks):
        opcode = Opcode.TEXT if index == 0 else Opcode.CONT
        protocol.receive_data(Frame(opcode, chunk, fin=index == len(chunks) - 1).serialize(mask=True))
        if protocol.close_sent is not None:
            break
    frames = protocol.events_received()
    received = b"".join(frame.data for frame in frames if frame.opcode in (Opcode.TEXT, Opcode.CONT))
    too_big = max(len(c) for c in chunks) > LIMITS.max_frame_bytes or len(message) > LIMITS.max_message_bytes
    event(f"{'closed 1009' if too_big else 'delivered'}, {len(chunks)} fragment(s)")
    if too_big:
        assert protocol.close_sent is not None and protocol.close_sent.code == 1009
        return
    assert protocol.close_sent is None
    assert received == message
    body = received.decode("utf-8")
    assert routed(body, default=False) == "sendMessage"
    assert_event_builds(body, "sendMessage")


# ------------------------------------------------------------------------- @connections

KNOWN_ID = "L0SM9cOFvHcCIhw="
MAX_PAYLOAD = 1024
RESPONSE_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


class Manager:
    """One open connection, ``KNOWN_ID``."""

    def describe(self, connection_id: str) -> Connection | None:
        return CONNECTION if connection_id == KNOWN_ID else None

    async def post(self, connection_id: str, data: bytes) -> bool:
        return connection_id == KNOWN_ID

    async def delete(self, connection_id: str) -> bool:
        return connection_id == KNOWN_ID


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "sockname" else default


def serve(data: list[bytes]) -> list[int]:
    """Feed ``data`` (in these pieces) to a management API connection; the statuses answered."""

    async def scenario() -> list[int]:
        api = ManagementApi(Manager(), "dev", max_payload=MAX_PAYLOAD)
        protocol = ServerProtocol(api, max_body=api.read_limit)
        transport = Transport()
        protocol.connection_made(transport)
        for piece in data:
            if transport.closed:
                break
            protocol.data_received(piece)
            for _ in range(5):  # the manager answers at once: a few loop turns resolve it
                await asyncio.sleep(0)
        protocol.connection_lost(None)
        return [int(m.group(1)) for m in RESPONSE_LINE.finditer(transport.written)]

    return asyncio.run(scenario())


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
       end=st.sampled_from([b"", b"\r\n\r\n"]), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_arbitrary_bytes_never_crash_the_connections_parser(data: bytes, end: bytes, cuts: list[int]) -> None:
    statuses = serve(pieces(b"GET /dev/@connections/x HTTP/1.1\r\n" + data + end, cuts))
    event(f"statuses {sorted(set(statuses))}")
    assert 500 not in statuses
    assert set(statuses) <= {100, 400, 403, 410, 413, 431}


ID_STRATEGY = st.sampled_from([KNOWN_ID, "L0SM9cOFvHcCIhw%3D", "L0SM9cOFvHcCIhw%3d", "gone", "", "a/b", "%00", "%ZZ"])


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"] * 3 + ["PUT", "HEAD", "get", "PATCH"]),
    prefix=st.sampled_from(["/dev/@connections/"] * 4 + ["/prod/@connections/", "/dev/@connections", "/dev/x/"]),
    connection_id=ID_STRATEGY,
    query=st.sampled_from(["", "?x=1", "?"]),
    body=st.binary(max_size=MAX_PAYLOAD + 2) | st.sampled_from([b"", b"x" * (MAX_PAYLOAD + 1)]),
    framing=st.sampled_from(["length", "chunked", "wrong length", "bad length"]),
    extra_headers=st.lists(st.tuples(st.text("abcXYZ-", min_size=1, max_size=8), st.text(max_size=8)), max_size=3),
    cuts=st.lists(st.integers(0, 2000), max_size=3),
)
def test_connections_requests_get_aws_statuses(
    method: str, prefix: str, connection_id: str, query: str, body: bytes, framing: str,
    extra_headers: list[tuple[str, str]], cuts: list[int],
) -> None:
    headers = [f"{name}: {value}" for name, value in extra_headers]
    if framing == "chunked":
        headers.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
    else:
        length = {"length": str(len(body)), "wrong length": str(len(body) + 5), "bad length": "-1"}[framing]
        headers.append(f"Content-Length: {length}")
        payload = body
    head = f"{method} {prefix}{connection_id}{query} HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers)
    request = head.encode("utf-8") + b"\r\n" + payload
    statuses = serve(pieces(request, cuts))
    event(f"{framing}: {statuses}")
    overridden = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in extra_headers)
    if framing == "wrong length" or overridden:
        assert 500 not in statuses  # waits for more body, or answers some 4xx
        return
    if framing == "bad length":
        assert statuses == [400]
        return
    known = connection_id in (KNOWN_ID, "L0SM9cOFvHcCIhw%3D", "L0SM9cOFvHcCIhw%3d")
    if prefix != "/dev/@connections/" or connection_id in ("", "a/b") or method not in ("GET", "POST", "DELETE"):
        expected = 403
    elif method == "POST" and len(body) > MAX_PAYLOAD:
        expected = 413
    elif not known:
        expected = 410
    else:
        expected = {"GET": 200, "POST": 200, "DELETE": 204}[method]
    assert statuses == [expected]
