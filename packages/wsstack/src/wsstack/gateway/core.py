"""Sans-I/O core of the local API Gateway WebSocket gateway.

Everything here is plain data in, plain data out: no sockets, no asyncio, no clock reads
unless a ``now`` argument is left out. The asyncio layer in :mod:`wsstack.gateway.server`
feeds it handshakes, frames and invocation results and acts on what it returns, so the AWS
behaviour it reproduces can be tested without a network.

The AWS behaviour, with the captured events it was checked against, is summarised in the
module-level comments of each section below.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wsstack.model import ApiKey, Authorizer, InvocationResult, Route, StageSettings, Throttle, WebSocketApi

__all__ = [
    "CONNECT_ROUTE",
    "DEFAULT_ROUTE",
    "DISCONNECT_ROUTE",
    "GOING_AWAY",
    "AuthorizerDecision",
    "Connection",
    "ConnectionRegistry",
    "HandshakeRequest",
    "Limits",
    "RouteThrottles",
    "StageContext",
    "TokenBucket",
    "build_authorizer_event",
    "build_connect_event",
    "build_disconnect_event",
    "build_message_event",
    "client_close_details",
    "connect_status",
    "connect_subprotocol",
    "default_api_id",
    "error_frame",
    "find_api_key",
    "format_iso8601",
    "format_request_time",
    "interpret_authorizer_result",
    "message_reply",
    "missing_identity_sources",
    "new_connection_id",
    "new_request_id",
    "select_model",
    "select_route",
    "selection_key",
    "server_close_details",
    "validate_body",
]

CONNECT_ROUTE = "$connect"
DISCONNECT_ROUTE = "$disconnect"
DEFAULT_ROUTE = "$default"


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Service limits of an API Gateway WebSocket API, AWS defaults unless overridden.

    Tests shrink them (an idle timeout of a fraction of a second, say) to observe the
    behaviour without waiting for the real values.

    Attributes:
        idle_timeout: Seconds without a message from the client before the gateway closes
            the connection with 1001 (AWS: 10 minutes).
        max_connection_duration: Seconds after which any connection is closed with 1001
            (AWS: 2 hours).
        max_frame_bytes: Largest WebSocket frame accepted; larger ones close the
            connection with 1009 (AWS: 32 KB).
        max_message_bytes: Largest message, after reassembling fragments; larger ones close
            the connection with 1009. Also the largest ``@connections`` POST body, larger
            ones get 413 (AWS: 128 KB).
        integration_timeout: Seconds the gateway waits for a Lambda before giving up on the
            request (AWS: 29 s).
    """

    idle_timeout: float = 600
    max_connection_duration: float = 7200
    max_frame_bytes: int = 32 * 1024
    max_message_bytes: int = 128 * 1024
    integration_timeout: float = 29.0


# ------------------------------------------------------------------------------ ids
#
# AWS connection ids, request ids and message ids are 16 characters of URL-safe base64
# ending in "=" (e.g. "BFaT_fALIAMCKug="): 11 bytes encoded. Clients and Lambdas treat
# them as opaque, but code that validates or logs them sees the same shape locally.


def _aws_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode("ascii")


def new_connection_id() -> str:
    """A fresh connection id shaped like AWS's, e.g. ``"L0SM9cOFvHcCIhw="``."""
    return _aws_id()


def new_request_id() -> str:
    """A fresh request id (also used as extendedRequestId and messageId), AWS-shaped."""
    return _aws_id()


def default_api_id(logical_id: str) -> str:
    """A stable 10-character API id derived from the API's logical id.

    AWS API ids are 10 lowercase alphanumerics (``"fjnq7njcv2"``). Deriving it from the
    logical id keeps it the same across restarts of the local stack.
    """
    digest = int.from_bytes(hashlib.sha256(logical_id.encode()).digest()[:8], "big")
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, 36)
        chars.append(alphabet[index])
    return "".join(chars)


def _trace_id(now: float) -> str:
    return f"Root=1-{int(now):08x}-{secrets.token_hex(12)}"


# ------------------------------------------------------------------------ timestamps

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_request_time(epoch_seconds: float) -> str:
    """``requestTime`` as API Gateway writes it, e.g. ``"09/Feb/2024:10:00:00 +0000"``.

    Written by hand rather than with ``strftime("%b")``, whose month names follow the
    process locale.
    """
    return _request_time(int(epoch_seconds))


@functools.lru_cache(maxsize=4)
def _request_time(second: int) -> str:
    # Every event carries one and the text changes once a second: formatted once per second.
    t = datetime.fromtimestamp(second, UTC)
    return f"{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year:04d}:{t:%H:%M:%S} +0000"


def format_iso8601(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, as the ``@connections`` GET returns timestamps."""
    t = datetime.fromtimestamp(epoch_seconds, UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def _ms(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)


# ------------------------------------------------------------------------- handshake


@dataclass(frozen=True)
class StageContext:
    """Where the gateway is serving: what ``requestContext`` says about the API.

    Attributes:
        api_id: The API id (``requestContext.apiId``).
        stage: The stage name; connections are accepted on ``/<stage>`` only.
        domain_name: ``requestContext.domainName`` (locally ``host:port``).
        region: Region used in the authorizer's ``methodArn``.
        account_id: Account id used in the authorizer's ``methodArn``.
        stage_variables: The stage's ``StageVariables``; events carry them as
            ``stageVariables`` (see :func:`build_message_event`).
    """

    api_id: str
    stage: str
    domain_name: str
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stage_variables: Mapping[str, str] = field(default_factory=dict)

    @property
    def method_arn(self) -> str:
        """``arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/$connect``."""
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/{CONNECT_ROUTE}"


@dataclass(frozen=True)
class HandshakeRequest:
    """The HTTP upgrade request of a new connection, as the gateway's events see it.

    Attributes:
        path: The request path without the query string.
        headers: Header (name, value) pairs in arrival order, original case kept.
        query: Query string (name, value) pairs in arrival order.
        source_ip: The client's address.
    """

    path: str
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    source_ip: str

    @classmethod
    def from_http(
        cls,
        target: str,
        headers: Iterable[tuple[str, str]],
        source_ip: str,
        *,
        server_port: int,
        scheme: str = "http",
        now: float | None = None,
    ) -> HandshakeRequest:
        """Build from the raw request target and headers.

        Adds the headers API Gateway's front end adds before the request reaches the
        authorizer and the ``$connect`` integration: ``X-Amzn-Trace-Id`` and
        ``X-Forwarded-For/Port/Proto``.
        """
        split = urlsplit(target)
        raw = [(k, v) for k, v in headers if k.lower() not in _FORWARDED]
        prior_xff = [v for k, v in headers if k.lower() == "x-forwarded-for"]
        forwarded_for = ", ".join([*prior_xff, source_ip])
        if not any(k.lower() == "x-amzn-trace-id" for k, _ in raw):
            raw.append(("X-Amzn-Trace-Id", _trace_id(time.time() if now is None else now)))
        raw += [
            ("X-Forwarded-For", forwarded_for),
            ("X-Forwarded-Port", str(server_port)),
            ("X-Forwarded-Proto", scheme),
        ]
        return cls(
            path=split.path,
            headers=tuple(raw),
            query=tuple(parse_qsl(split.query, keep_blank_values=True)),
            source_ip=source_ip,
        )

    def header(self, name: str) -> str | None:
        """Last value of a header, matched case-insensitively."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    def query_param(self, name: str) -> str | None:
        """Last value of a query parameter (names are case-sensitive)."""
        found = None
        for key, value in self.query:
            if key == name:
                found = value
        return found

    @property
    def user_agent(self) -> str | None:
        return self.header("User-Agent")


_FORWARDED = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
# Hop-by-hop headers: the authorizer sees them, the $connect integration does not
# (compare the authorizer and CONNECT fixtures captured from AWS).
_HOP_BY_HOP = {"connection", "upgrade"}


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    # API Gateway's single-value maps keep the last value of a repeated name.
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


# ------------------------------------------------------------------------ connections


@dataclass
class Connection:
    """One open (``$connect`` succeeded) connection.

    Times are epoch seconds. ``authorizer`` is exactly what goes into
    ``requestContext.authorizer`` of every event on this connection.
    """

    connection_id: str
    connected_at: float
    source_ip: str
    user_agent: str | None = None
    authorizer: dict[str, Any] | None = None
    last_active_at: float = 0.0
    #: The API key the connection presented on ``$connect`` (routes requiring one only).
    api_key: ApiKey | None = None

    def __post_init__(self) -> None:
        if not self.last_active_at:
            self.last_active_at = self.connected_at

    def identity(self) -> dict[str, str]:
        """``requestContext.identity`` (and the ``@connections`` GET identity)."""
        identity = {"sourceIp": self.source_ip}
        if self.user_agent is not None:
            identity["userAgent"] = self.user_agent
        return identity

    def describe(self) -> dict[str, Any]:
        """The ``@connections/{id}`` GET body: connectedAt, identity, lastActiveAt."""
        return {
            "connectedAt": format_iso8601(self.connected_at),
            "identity": self.identity(),
            "lastActiveAt": format_iso8601(self.last_active_at),
        }


class ConnectionRegistry:
    """Open connections by id.

    A connection enters only once its ``$connect`` succeeded, which is why
    ``@connections`` calls made from inside ``$connect`` get 410 Gone, as on AWS.
    """

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        if connection.connection_id in self._connections:
            raise ValueError(f"duplicate connection id {connection.connection_id}")
        self._connections[connection.connection_id] = connection

    def get(self, connection_id: str) -> Connection | None:
        return self._connections.get(connection_id)

    def remove(self, connection_id: str) -> Connection | None:
        return self._connections.pop(connection_id, None)

    def touch(self, connection_id: str, now: float | None = None) -> None:
        """Record client activity (updates ``lastActiveAt``)."""
        connection = self._connections.get(connection_id)
        if connection is not None:
            connection.last_active_at = time.time() if now is None else now

    def __contains__(self, connection_id: object) -> bool:
        return connection_id in self._connections

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))


# -------------------------------------------------------------------- route selection
#
# AWS evaluates the API's RouteSelectionExpression on the JSON body of each message:
# an exact match of the selected value picks that route, anything else goes to
# $default, and with no $default the client gets a "Forbidden" frame. A body that is
# not JSON (or not a JSON object) also goes to $default.

_TEMPLATE_PART = re.compile(r"\$\{request\.body\.([A-Za-z0-9_.\-]+)\}")
_SIMPLE = re.compile(r"^\$request\.body\.([A-Za-z0-9_.\-]+)$")


class _Digits(str):
    """An integer too long for ``int()`` (Python's digit limit), kept as its JSON text."""

    __slots__ = ()


def _parse_int(text: str) -> int | str:
    # Python refuses to convert integers of more than 4300 digits (CVE-2020-10735); the
    # message is still JSON, and AWS routes it by its other fields.
    try:
        return int(text)
    except ValueError:
        return _Digits(text)


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_CONSTANTS = {
    "null": None, "true": True, "false": False,
    "NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf"),
}


def _parse_json(text: str) -> Any:
    """``json.loads`` that accepts any depth of nesting.

    The C decoder recurses once per level and raises RecursionError near 1000 levels,
    which a 4 KB frame (``"[" * 2000 + "]" * 2000``) reaches. Such frames are valid JSON
    that AWS routes, so they are parsed again without recursion.

    Raises:
        ValueError: ``text`` is not JSON.
    """
    try:
        return json.loads(text, parse_int=_parse_int)
    except RecursionError:
        return _parse_json_iteratively(text)


def _json_key(text: str, pos: int) -> tuple[str, int]:
    # An object member's name and the colon after it; returns the position of its value.
    if text[pos : pos + 1] != '"':
        raise ValueError(f"expecting a property name at {pos}")
    key, pos = json.decoder.scanstring(text, pos + 1, True)
    pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] != ":":
        raise ValueError(f"expecting ':' at {pos}")
    return key, _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]


def _json_scalar(text: str, pos: int) -> tuple[Any, int]:
    # A string, number or constant starting at pos, as json.loads reads it.
    if text[pos : pos + 1] == '"':
        return json.decoder.scanstring(text, pos + 1, True)
    for name, value in _CONSTANTS.items():
        if text.startswith(name, pos):
            return value, pos + len(name)
    number = _NUMBER.match(text, pos)
    if number is None:
        raise ValueError(f"expecting a value at {pos}")
    integer, fraction, exponent = number.groups()
    if fraction or exponent:
        return float(number.group()), number.end()
    return _parse_int(integer), number.end()


def _parse_json_iteratively(text: str) -> Any:
    """What ``json.loads`` returns for ``text``, with an explicit stack instead of recursion."""
    if text.startswith("\ufeff"):
        raise ValueError("unexpected UTF-8 BOM")
    # Each frame: the open container and, for an object, the name awaiting its value.
    stack: list[list[Any]] = []
    pos = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    while True:
        # A value starts at pos.
        opener = text[pos : pos + 1]
        value: Any
        if opener in ("{", "["):
            pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
            closer = "}" if opener == "{" else "]"
            if text[pos : pos + 1] == closer:
                value, pos = ({} if opener == "{" else []), pos + 1
            elif opener == "{":
                key, pos = _json_key(text, pos)
                stack.append([{}, key])
                continue
            else:
                stack.append([[], None])
                continue
        else:
            value, pos = _json_scalar(text, pos)
        # Store the value in its container; close every container that ends here.
        while True:
            pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
            if not stack:
                if pos != len(text):
                    raise ValueError(f"extra data at {pos}")
                return value
            frame = stack[-1]
            container = frame[0]
            if isinstance(container, dict):
                container[frame[1]] = value
            else:
                container.append(value)
            separator = text[pos : pos + 1]
            if separator == ",":
                pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
                if isinstance(container, dict):
                    frame[1], pos = _json_key(text, pos)
                break
            if separator != ("}" if isinstance(container, dict) else "]"):
                raise ValueError(f"expecting ',' or a closing bracket at {pos}")
            value, pos = stack.pop()[0], pos + 1


def _lookup(document: Any, dotted: str) -> Any:
    current = document
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _as_key(value: Any) -> str | None:
    # Scalars are stringified (numbers as JSON writes them, booleans lowercase);
    # null, objects and arrays select nothing.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def selection_key(expression: str, body: str) -> str | None:
    """Evaluate a route selection expression on a message body.

    Supports ``$request.body.<dotted.path>`` and templates made of
    ``${request.body.<path>}`` parts (``"${request.body.service}/${request.body.action}"``).
    An expression with neither is a constant.

    Returns:
        The selected route key, or None when the body is not a JSON object or the
        path is missing, null or not a scalar.
    """
    simple = _SIMPLE.match(expression)
    parts = _TEMPLATE_PART.findall(expression)
    if simple is None and not parts:
        return expression
    try:
        document = _parse_json(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if simple is not None:
        return _as_key(_lookup(document, simple.group(1)))

    values = {path: _as_key(_lookup(document, path)) for path in parts}
    if any(v is None for v in values.values()):
        return None
    return _TEMPLATE_PART.sub(lambda m: values[m.group(1)] or "", expression)


def select_route(api: WebSocketApi, body: str) -> Route | None:
    """The route a message goes to: exact match, else ``$default``, else None."""
    key = selection_key(api.route_selection_expression, body)
    if key is not None and key not in (CONNECT_ROUTE, DISCONNECT_ROUTE):
        route = api.routes.get(key)
        if route is not None:
            return route
    return api.routes.get(DEFAULT_ROUTE)


# --------------------------------------------------------------------- throttling
#
# API Gateway throttles each route of a stage with a token bucket: ThrottlingBurstLimit is
# the bucket's size, ThrottlingRateLimit the tokens added per second, one token per request
# (websocket-api-protect in the API Gateway developer guide). DefaultRouteSettings give each
# route its own bucket; RouteSettings override them for one route key. A throttled $connect
# is refused with 429 Too Many Requests, as the guide says clients receive; a throttled
# message gets an error frame in the shape of API Gateway's others, {"message": "Too Many
# Requests", "connectionId", "requestId"} (the guide names the 429 only, not the frame's text).
# The integration is not invoked either way. AWS applies throttles "on a best-effort basis"
# and also has account-level limits; locally the stage's are exact and the account's absent.


class TokenBucket:
    """One route's token bucket; ``now`` is injected, in seconds of any monotonic clock.

    Args:
        throttle: The route's limits. No burst limit means a bucket of one second's rate;
            no rate limit means the bucket refills at once (nothing is throttled).
        now: The time the bucket starts, full.
    """

    def __init__(self, throttle: Throttle, now: float) -> None:
        self.rate = math.inf if throttle.rate_limit is None else throttle.rate_limit
        if throttle.burst_limit is not None:
            self.capacity = float(throttle.burst_limit)
        else:
            self.capacity = max(1.0, self.rate) if throttle.rate_limit is not None else math.inf
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> bool:
        """Spend a token if one is left (True), else the request is throttled (False)."""
        if self.rate == math.inf and self.capacity > 0:
            return True
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RouteThrottles:
    """The token buckets of one stage's routes, made on first use."""

    def __init__(self, settings: StageSettings) -> None:
        self._settings = settings
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, route_key: str, now: float) -> bool:
        """Whether a request to ``route_key`` at ``now`` may reach its integration."""
        bucket = self._buckets.get(route_key)
        if bucket is None:
            bucket = self._buckets[route_key] = TokenBucket(self._settings.throttle(route_key), now)
        return bucket.take(now)


# ------------------------------------------------------------------ request validation
#
# A route with a ModelSelectionExpression validates each message body before the
# integration runs: the expression (evaluated like a route selection expression) picks a
# key of the route's RequestModels, else the "$default" model; with neither, validation
# fails. The models are JSON Schema draft 4. A body that fails gets API Gateway's
# BAD_REQUEST_BODY gateway response as an error frame, and the function is not invoked
# (websocket-api-request-validation in the API Gateway developer guide, whose wscat example
# shows the frame: {"message": "Invalid request body", "connectionId", "requestId"}). Without
# a model selection expression there is no validation, as on AWS.

_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Any:
    # One compiled validator per schema object (they live as long as the app).
    from jsonschema import Draft4Validator

    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = _VALIDATORS[id(schema)] = (schema, Draft4Validator(schema))
    return cached[1]


def select_model(route: Route, body: str) -> tuple[str | None, dict[str, Any] | None]:
    """``(model key, schema)`` the route validates ``body`` against.

    ``(None, None)`` when the route validates nothing (no model selection expression);
    ``(key, None)`` when the selected key has no model and there is no ``$default`` model,
    which fails validation as on AWS.
    """
    expression = route.model_selection_expression
    if expression is None:
        return None, None
    key = selection_key(expression, body)
    if key is not None and key in route.request_models:
        return key, route.request_models[key]
    if DEFAULT_ROUTE in route.request_models:
        return DEFAULT_ROUTE, route.request_models[DEFAULT_ROUTE]
    return key or "", None


def validate_body(route: Route, body: str) -> str | None:
    """Why ``body`` fails the route's request validation (for the log), or None when it passes."""
    key, schema = select_model(route, body)
    if key is None:
        return None
    if schema is None:
        return f"no request model for {key!r} and no $default model"
    try:
        document = _parse_json(body)
    except ValueError:
        return "the body is not JSON"
    error = next(iter(_validator(schema).iter_errors(document)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"model {key!r}: {error.message}" + (f" at {where}" if where else "")


# ---------------------------------------------------------------------------- API keys
#
# API keys on a WebSocket API guard $connect only (ApiKeyRequired on that route). The API's
# ApiKeySelectionExpression says where the key comes from: the x-api-key header of the
# upgrade (the default), or the usageIdentifierKey a Lambda authorizer returns. A missing,
# unknown or disabled key, or one no usage plan attaches to the stage, refuses the upgrade
# with 403 Forbidden; events then name the key in requestContext.identity.

_AUTHORIZER_KEY = "$context.authorizer.usageIdentifierKey"


def find_api_key(
    expression: str,
    handshake: HandshakeRequest,
    keys: Iterable[ApiKey],
    *,
    usage_identifier_key: str | None = None,
) -> ApiKey | None:
    """The enabled key of this stage that the handshake presents, or None.

    Args:
        expression: The API's ``ApiKeySelectionExpression``.
        handshake: The upgrade request (for ``$request.header.x-api-key``).
        keys: The API keys usage plans attach to the stage.
        usage_identifier_key: What the authorizer returned as ``usageIdentifierKey``.
    """
    presented = usage_identifier_key if expression == _AUTHORIZER_KEY else handshake.header("x-api-key")
    if not presented:
        return None
    for key in keys:
        if key.enabled and hmac.compare_digest(key.value.encode(), presented.encode()):
            return key
    return None


# ---------------------------------------------------------------------------- events
#
# Field sets follow events captured from AWS (the Powertools fixtures and others):
# CONNECT carries the handshake headers (hop-by-hop ones dropped) and the query string
# only when there is one; MESSAGE has no headers; DISCONNECT carries a fixed header set
# (Host, x-api-key, X-Forwarded-For, x-restapi) plus the close code and reason.
# requestId and extendedRequestId are the same value on WebSocket APIs.


def _identity(connection: Connection) -> dict[str, str]:
    # With an API key, requestContext.identity names it (apiKey, apiKeyId) as on REST APIs;
    # the @connections GET identity does not.
    identity = connection.identity()
    if connection.api_key is not None:
        identity["apiKey"] = connection.api_key.value
        identity["apiKeyId"] = connection.api_key.key_id
    return identity


def _with_stage_variables(event: dict[str, Any], stage: StageContext) -> dict[str, Any]:
    # AWS adds stageVariables to an integration's event only when the stage has some (no
    # key at all otherwise); Powertools' WebSocket models ignore it either way.
    if stage.stage_variables:
        event["stageVariables"] = dict(stage.stage_variables)
    return event


def _request_context(
    stage: StageContext,
    connection: Connection,
    *,
    route_key: str,
    event_type: str,
    request_id: str,
    now: float,
    message_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"routeKey": route_key}
    if message_id is not None:
        context["messageId"] = message_id
    context.update(
        {
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": format_request_time(now),
            "messageDirection": "IN",
            "stage": stage.stage,
            "connectedAt": _ms(connection.connected_at),
            "requestTimeEpoch": _ms(now),
            "identity": _identity(connection),
            "requestId": request_id,
            "domainName": stage.domain_name,
            "connectionId": connection.connection_id,
            "apiId": stage.api_id,
        }
    )
    if extra:
        context.update(extra)
    if connection.authorizer is not None:
        context["authorizer"] = dict(connection.authorizer)
    return context


def build_connect_event(
    stage: StageContext,
    handshake: HandshakeRequest,
    connection: Connection,
    *,
    request_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The ``$connect`` integration event (eventType CONNECT)."""
    now = time.time() if now is None else now
    headers, multi_headers = _single_and_multi((k, v) for k, v in handshake.headers if k.lower() not in _HOP_BY_HOP)
    event: dict[str, Any] = {"headers": headers, "multiValueHeaders": multi_headers}
    if handshake.query:
        query, multi_query = _single_and_multi(handshake.query)
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"] = _request_context(
        stage,
        connection,
        route_key=CONNECT_ROUTE,
        event_type="CONNECT",
        request_id=request_id,
        now=now,
    )
    event["isBase64Encoded"] = False
    return _with_stage_variables(event, stage)


def build_message_event(
    stage: StageContext,
    connection: Connection,
    *,
    route_key: str,
    body: str,
    request_id: str,
    message_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """A message route's event (eventType MESSAGE); text frames only, so never base64."""
    now = time.time() if now is None else now
    event = {
        "requestContext": _request_context(
            stage,
            connection,
            route_key=route_key,
            event_type="MESSAGE",
            request_id=request_id,
            now=now,
            message_id=message_id,
        ),
        "body": body,
        "isBase64Encoded": False,
    }
    return _with_stage_variables(event, stage)


def build_disconnect_event(
    stage: StageContext,
    connection: Connection,
    *,
    status_code: int,
    reason: str,
    request_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The ``$disconnect`` event (eventType DISCONNECT) with the close code and reason."""
    now = time.time() if now is None else now
    headers, multi_headers = _single_and_multi(
        [("Host", stage.domain_name), ("x-api-key", ""), ("X-Forwarded-For", ""), ("x-restapi", "")]
    )
    event = {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": _request_context(
            stage,
            connection,
            route_key=DISCONNECT_ROUTE,
            event_type="DISCONNECT",
            request_id=request_id,
            now=now,
            extra={"disconnectStatusCode": status_code, "disconnectReason": reason},
        ),
        "isBase64Encoded": False,
    }
    return _with_stage_variables(event, stage)


def build_authorizer_event(
    stage: StageContext,
    handshake: HandshakeRequest,
    connection: Connection,
    *,
    request_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The REQUEST authorizer's event for ``$connect``.

    Unlike the CONNECT event it keeps every header and always carries the query-string
    and stage-variable maps, empty or not.
    """
    now = time.time() if now is None else now
    headers, multi_headers = _single_and_multi(handshake.headers)
    query, multi_query = _single_and_multi(handshake.query)
    unauthorized = Connection(
        connection_id=connection.connection_id,
        connected_at=connection.connected_at,
        source_ip=connection.source_ip,
        user_agent=connection.user_agent,
    )
    return {
        "type": "REQUEST",
        "methodArn": stage.method_arn,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        # Always present for the authorizer, empty when the stage has none.
        "stageVariables": dict(stage.stage_variables),
        "requestContext": _request_context(
            stage,
            unauthorized,
            route_key=CONNECT_ROUTE,
            event_type="CONNECT",
            request_id=request_id,
            now=now,
        ),
    }


# ------------------------------------------------------------------------ authorizer
#
# A REQUEST authorizer on $connect: API Gateway first checks the identity sources and
# answers 401 without invoking the authorizer when one is missing or empty. The
# authorizer must return an IAM policy (the "simple response" format is HTTP-API only):
# an explicit Deny, or no Allow matching the methodArn, is 403; an Allow lets the
# connection through and its principalId + context are attached to every event. A
# function error is 500, except the conventional "Unauthorized" error, which is 401.
# A response API Gateway cannot read is also 500.


_HEADER_SOURCE = "route.request.header."
_QUERY_SOURCE = "route.request.querystring."


def is_sigv4_signed(handshake: HandshakeRequest) -> bool:
    """True when the upgrade carries a SigV4 signature: an ``AWS4-HMAC-SHA256`` Authorization
    header, or a presigned URL's ``X-Amz-Signature`` query parameter.

    An ``AWS_IAM`` ``$connect`` refuses an unsigned upgrade with 403. Whether the signature
    is valid, and what IAM allows its signer, is not checked locally.
    """
    authorization = handshake.header("Authorization") or ""
    return authorization.startswith("AWS4-HMAC-SHA256 ") or bool(handshake.query_param("X-Amz-Signature"))


def missing_identity_sources(authorizer: Authorizer, handshake: HandshakeRequest) -> list[str]:
    """Identity sources absent (or empty) from the handshake.

    Only ``route.request.header.X`` and ``route.request.querystring.X`` can be checked;
    other kinds (stage variables, context) are not looked at.
    """
    missing = []
    for source in authorizer.identity_sources:
        if source.startswith(_HEADER_SOURCE):
            value = handshake.header(source[len(_HEADER_SOURCE) :])
        elif source.startswith(_QUERY_SOURCE):
            value = handshake.query_param(source[len(_QUERY_SOURCE) :])
        else:
            continue
        if not value:
            missing.append(source)
    return missing


@dataclass(frozen=True)
class AuthorizerDecision:
    """What the gateway does with an authorizer's answer.

    Attributes:
        status: 200 to let the connection through, else the handshake's HTTP status
            (401, 403 or 500).
        principal_id: The authorizer's ``principalId`` when allowed.
        context: The authorizer's ``context``, values stringified as AWS passes them.
        detail: Why, for the log (never sent to the client).
    """

    status: int
    principal_id: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    #: The authorizer's ``usageIdentifierKey``: the API key, when the API selects it so.
    usage_identifier_key: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 200

    def request_context_authorizer(self, latency_ms: int) -> dict[str, Any]:
        """``requestContext.authorizer`` for events on this connection."""
        return {"principalId": self.principal_id, "integrationLatency": latency_ms, **self.context}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_matches(actions: list[Any]) -> bool:
    for action in actions:
        if not isinstance(action, str):
            raise ValueError("Action must be a string")
        # IAM action names are case-insensitive and may use wildcards.
        if fnmatch.fnmatchcase("execute-api:invoke", action.lower()):
            return True
    return False


def _resource_matches(resources: list[Any], method_arn: str) -> bool:
    for resource in resources:
        if not isinstance(resource, str):
            raise ValueError("Resource must be a string")
        # IAM ARN matching: '*' any run of characters, '?' one character.
        pattern = re.escape(resource).replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(pattern, method_arn):
            return True
    return False


def _stringify_context(context: Any) -> dict[str, str]:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise ValueError("context must be an object")
    out = {}
    for key, value in context.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = str(value)
        elif value is None:
            continue
        else:
            # AWS allows only string, number and boolean context values.
            raise ValueError(f"context value for {key!r} is not a string, number or boolean")
    return out


def _evaluate_policy(policy: Any, method_arn: str) -> bool:
    if not isinstance(policy, dict) or "Statement" not in policy:
        raise ValueError("policyDocument must be an object with a Statement")
    allowed = False
    for statement in _as_list(policy["Statement"]):
        if not isinstance(statement, dict):
            raise ValueError("each Statement must be an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"Effect must be Allow or Deny, not {effect!r}")
        if not _action_matches(_as_list(statement.get("Action", []))):
            continue
        if not _resource_matches(_as_list(statement.get("Resource", [])), method_arn):
            continue
        if effect == "Deny":
            return False  # an explicit Deny always wins
        allowed = True
    return allowed


def interpret_authorizer_result(result: InvocationResult, method_arn: str) -> AuthorizerDecision:
    """Turn a REQUEST authorizer's invocation result into a decision.

    Args:
        result: The authorizer Lambda's invocation result.
        method_arn: The ARN its policy must allow (:attr:`StageContext.method_arn`).
    """
    if not result.ok:
        error = result.error or {}
        if error.get("errorMessage") == "Unauthorized":
            return AuthorizerDecision(401, detail="authorizer raised Unauthorized")
        return AuthorizerDecision(500, detail=f"authorizer failed: {error.get('errorType')}")
    payload = result.payload
    try:
        if not isinstance(payload, dict):
            raise ValueError("response is not an object")
        principal_id = payload.get("principalId")
        if not isinstance(principal_id, str | int | float) or isinstance(principal_id, bool):
            raise ValueError("principalId is missing")
        allowed = _evaluate_policy(payload.get("policyDocument"), method_arn)
        context = _stringify_context(payload.get("context"))
    except ValueError as exc:
        return AuthorizerDecision(500, detail=f"malformed authorizer response: {exc}")
    if not allowed:
        return AuthorizerDecision(403, detail="policy does not allow the methodArn")
    usage_key = payload.get("usageIdentifierKey")
    return AuthorizerDecision(
        200, principal_id=str(principal_id), context=context,
        usage_identifier_key=usage_key if isinstance(usage_key, str) else None,
    )


# --------------------------------------------------------------- integration results


def connect_status(result: InvocationResult) -> int:
    """The handshake status a ``$connect`` integration result leads to.

    A Lambda error is 502. A returned ``statusCode`` outside 2xx refuses the connection
    with that status; any 2xx, or a result without ``statusCode``, accepts it (200). A
    ``statusCode`` that is not a number is a malformed response: 502.
    """
    if not result.ok:
        return 502
    payload = result.payload
    if not isinstance(payload, dict) or payload.get("statusCode") is None:
        return 200
    raw = payload["statusCode"]
    if isinstance(raw, bool):
        return 502
    try:
        status = int(raw)
    except (TypeError, ValueError):
        return 502
    if not 100 <= status <= 599:
        return 502
    return 200 if 200 <= status < 300 else status


_SUBPROTOCOL_HEADER = "sec-websocket-protocol"


def connect_subprotocol(result: InvocationResult) -> str | None:
    """The ``Sec-WebSocket-Protocol`` a ``$connect`` integration chose, if any.

    API Gateway does not negotiate subprotocols itself: the 101 response carries the header
    only when the ``$connect`` Lambda returns it in its response ``headers`` (or
    ``multiValueHeaders``), whatever the client offered. A client that offered subprotocols
    and gets none back is then free to fail the connection, as browsers do.
    """
    payload = result.payload if result.ok else None
    if not isinstance(payload, dict):
        return None
    value = _response_header(payload.get("headers"), _SUBPROTOCOL_HEADER)
    if isinstance(value, str) and value:
        return value
    values = _response_header(payload.get("multiValueHeaders"), _SUBPROTOCOL_HEADER)
    if isinstance(values, list) and values:
        return ", ".join(str(v) for v in values)
    return None


def _response_header(headers: Any, lowercase_name: str) -> Any:
    # Header names are case-insensitive; with the name repeated in other cases, the last wins.
    found = None
    if isinstance(headers, dict):
        for key, value in headers.items():
            if str(key).lower() == lowercase_name:
                found = value
    return found


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """The JSON frame API Gateway sends a client when it cannot serve a message.

    ``message`` is ``"Forbidden"`` (no route), ``"Internal server error"`` (the
    integration failed), ``"Endpoint request timed out"``, ``"Invalid request body"``
    (request validation) or ``"Too Many Requests"`` (throttled).
    """
    return json.dumps({"message": message, "connectionId": connection_id, "requestId": request_id})


def message_reply(result: InvocationResult, route: Route, *, connection_id: str, request_id: str) -> str | None:
    """What the client receives after a message route's integration ran, if anything.

    A Lambda error gives the "Internal server error" frame (the socket stays open). On
    success, only a two-way route (one with a ``$default`` route response) sends the
    returned ``body``; a ``body`` that is not a string is a malformed proxy response,
    answered like an error.
    """
    if not result.ok:
        return error_frame("Internal server error", connection_id, request_id)
    if not route.two_way:
        return None
    payload = result.payload
    if not isinstance(payload, dict) or payload.get("body") is None:
        return None
    body = payload["body"]
    if not isinstance(body, str):
        return error_frame("Internal server error", connection_id, request_id)
    return body


# ------------------------------------------------------------------------ close codes
#
# Captured $disconnect events show: a client close without a status code arrives as
# 1005 "Client-side close frame status not set"; a client close with a code passes that
# code and the client's reason through; API Gateway's own idle timeout is 1001
# "Going away".

GOING_AWAY = (1001, "Going away")

_SERVER_REASONS = {
    1000: "",
    1001: "Going away",
    1003: "Binary frames are not supported",
    1007: "Invalid frame payload data",
    1009: "Message too big",
}


def client_close_details(code: int | None, reason: str) -> tuple[int, str]:
    """``(disconnectStatusCode, disconnectReason)`` for a close the client started.

    ``code`` None means the TCP connection dropped without a close frame (1006).
    """
    if code is None:
        return 1006, ""
    if code == 1005:
        return 1005, "Client-side close frame status not set"
    return code, reason


def server_close_details(code: int) -> tuple[int, str]:
    """``(disconnectStatusCode, disconnectReason)`` for a close the gateway started."""
    return code, _SERVER_REASONS.get(code, "")
