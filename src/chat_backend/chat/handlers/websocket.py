"""What every WebSocket handler shares: reading the event, and answering errors.

This is the one place where outcomes become responses. On message routes a
:class:`ChatError` becomes an ``error`` frame with its code and sentence, and anything
else becomes ``INTERNAL`` (the trace goes to the log, never to the client). It is also
where a frame's ``requestId`` is checked and echoed on every frame answering it, so no
service needs to know about it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, overload

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat.config import Container, get_container
from chat.domain.errors import ChatError, ConnectionGone, ErrorCode, Forbidden, ValidationFailed
from chat.domain.models import Caller, FrameTicket, Identity
from chat.domain.ports import Notifier
from chat.domain.protocol import encode_frame, error_frame, request_id_of, with_request_id
from chat.domain.services import FrameLimiter, MessagingService

__all__ = [
    "INTERNAL_ERROR_TEXT",
    "WebSocketRequest",
    "connection_route",
    "identity_of",
    "message_route",
    "two_way_route",
]

logger = Logger(child=True)

INTERNAL_ERROR_TEXT = "Something went wrong on our side; please retry."

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def identity_of(event: APIGatewayWebSocketEvent) -> Identity | None:
    """The user the $connect authorizer admitted, from ``requestContext.authorizer``.

    API Gateway puts the authorizer's ``principalId`` and context (as strings) there on
    $connect and on every later event of the connection.
    """
    authorizer = event.request_context.get("authorizer") or {}
    user_id = authorizer.get("userId") or authorizer.get("principalId")
    if not isinstance(user_id, str) or not user_id:
        return None
    user_name = authorizer.get("userName")
    return Identity(user_id=user_id, user_name=user_name if isinstance(user_name, str) and user_name else user_id)


class _AnswerTracker:
    """A notifier that remembers whether the caller's own connection was posted to: a
    fault after the answer went out is only logged, so no frame gets two answers. Answers
    to the caller carry the frame's ``requestId`` when it had a valid one."""

    def __init__(self, notifier: Notifier, caller_connection_id: str, request_id: str | None) -> None:
        self._notifier = notifier
        self._caller = caller_connection_id
        self._request_id = request_id
        self.answered = False

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        if connection_id == self._caller:
            frame = with_request_id(frame, self._request_id)
        self._notifier.post(connection_id, frame)
        if connection_id == self._caller:
            self.answered = True


@dataclass(frozen=True)
class WebSocketRequest:
    """One invocation: the event, and the container to get services from."""

    event: APIGatewayWebSocketEvent
    container: Container

    @property
    def connection_id(self) -> str:
        return self.event.request_context.connection_id

    @property
    def body(self) -> str | None:
        return self.event.decoded_body

    @property
    def caller(self) -> Caller:
        """Raises:
        Forbidden: the event carries no authorizer identity.
        """
        user = identity_of(self.event)
        if user is None:
            raise Forbidden("This connection has no signed-in user; reconnect with a valid token.")
        return Caller(connection_id=self.connection_id, user=user)

    @cached_property
    def notifier(self) -> _AnswerTracker:
        context = self.event.request_context
        endpoint = self.container.connections_endpoint_for(context.domain_name, context.stage)
        return _AnswerTracker(self.container.notifier(endpoint), self.connection_id, self.request_id)

    @cached_property
    def _request_id_check(self) -> tuple[str | None, ValidationFailed | None]:
        try:
            return request_id_of(self.body), None
        except ValidationFailed as refusal:
            return None, refusal

    @property
    def request_id(self) -> str | None:
        """The frame's ``requestId`` when it has a valid one: what its answers echo."""
        return self._request_id_check[0]

    def check_request_id(self) -> None:
        """Raises:
        ValidationFailed: the frame's ``requestId`` is not a valid id.
        """
        refusal = self._request_id_check[1]
        if refusal is not None:
            raise refusal

    @property
    def answered(self) -> bool:
        """Whether a frame already went back to the caller's connection."""
        return "notifier" in self.__dict__ and self.notifier.answered

    @cached_property
    def limiter(self) -> FrameLimiter:
        return self.container.frame_limiter()

    @cached_property
    def ticket(self) -> FrameTicket:
        """This frame's claim on the connection's rate-limit window."""
        return self.limiter.ticket(self.connection_id)

    @property
    def user(self) -> Identity | None:
        return identity_of(self.event)

    def messaging(self) -> MessagingService:
        return self.container.messaging_service(self.notifier)


def _reply(request: WebSocketRequest, frame: dict[str, Any]) -> None:
    """Best effort: an error frame that cannot be delivered is only logged.

    A caller whose connection is gone (410) is forgotten, as every gone connection is: the
    ``$disconnect`` that would forget it is delivered on a best-effort basis.
    """
    try:
        request.notifier.post(request.connection_id, frame)
    except ConnectionGone:
        logger.info("Caller left before its error frame could be sent; forgetting its connection")
        try:
            request.container.connection_service().close(request.connection_id, request.user)
        except Exception:
            logger.exception("Could not forget the caller's gone connection")
    except Exception:
        logger.exception("Could not send the error frame")


def _count_refused(request: WebSocketRequest) -> None:
    """Refused frames count against the rate limit too; failing to count one is only logged."""
    try:
        request.limiter.count_refused(request.ticket)
    except Exception:
        logger.exception("Could not count a refused frame")


def _handle(
    request: WebSocketRequest, handle: Callable[[WebSocketRequest], Any], counts_own_frame: bool
) -> tuple[int, Any]:
    """Run ``handle``; the status code and either its result or the error frame to answer."""
    try:
        if not counts_own_frame:
            request.limiter.admit(request.ticket)
        # After the count, so a rate-limited frame hears RATE_LIMITED whatever it carries.
        request.check_request_id()
        return 200, handle(request)
    except ChatError as refusal:
        logger.info("Frame refused", extra={"code": refusal.code.value, "reason": refusal.message})
        _count_refused(request)
        return refusal.status_code, error_frame(refusal.code, refusal.message, refusal.message_id)
    except Exception:
        logger.exception("Unhandled error")
        _count_refused(request)
        return 500, error_frame(ErrorCode.INTERNAL, INTERNAL_ERROR_TEXT)


OneWayHandler = Callable[[WebSocketRequest], None]


@overload
def message_route(handle: OneWayHandler, *, counts_own_frame: bool = False) -> LambdaHandler: ...


@overload
def message_route(
    handle: None = None, *, counts_own_frame: bool = False
) -> Callable[[OneWayHandler], LambdaHandler]: ...


def message_route(
    handle: OneWayHandler | None = None, *, counts_own_frame: bool = False
) -> LambdaHandler | Callable[[OneWayHandler], LambdaHandler]:
    """Wrap a one-way message-route handler: refusals and faults become ``error`` frames,
    posted through ``@connections``.

    Every frame is counted against the connection's rate limit before ``handle`` runs, or
    by ``handle`` itself when ``counts_own_frame`` (sendMessage counts it in the same write
    as the message); a refused frame not counted yet is counted afterwards.

    Returns 200 when ``handle`` returns, the refusal's status (400, 403, 429, ...) for a
    :class:`ChatError`, and 500 for anything else.
    """

    def wrap(handle: OneWayHandler) -> LambdaHandler:
        @functools.wraps(handle)
        def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            request = WebSocketRequest(APIGatewayWebSocketEvent(event), get_container())
            logger.append_keys(connection_id=request.connection_id)
            status, outcome = _handle(request, handle, counts_own_frame)
            if status != 200:
                if request.answered:
                    # The caller has its answer (e.g. the ack); the fault hit a later push.
                    logger.warning("Fault after the caller was answered; no second answer")
                else:
                    _reply(request, outcome)
            return {"statusCode": status}

        return lambda_handler

    return wrap(handle) if handle is not None else wrap


def two_way_route(handle: Callable[[WebSocketRequest], dict[str, Any]]) -> LambdaHandler:
    """Wrap a handler of a two-way route (one with a ``$default`` route response): the
    frame it returns, or the error frame, goes back as the response ``body``, which API
    Gateway sends to the caller; no ``@connections`` post is needed."""

    @functools.wraps(handle)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = WebSocketRequest(APIGatewayWebSocketEvent(event), get_container())
        logger.append_keys(connection_id=request.connection_id)
        status, frame = _handle(request, handle, counts_own_frame=False)
        try:
            body = encode_frame(with_request_id(frame, request.request_id))
        except Exception:
            # The answer itself cannot go out; the caller still gets one.
            logger.exception("Could not encode the answer")
            internal = error_frame(ErrorCode.INTERNAL, INTERNAL_ERROR_TEXT)
            status, body = 500, encode_frame(with_request_id(internal, request.request_id))
        return {"statusCode": status, "body": body.decode()}

    return lambda_handler


def connection_route(handle: Callable[[WebSocketRequest], None]) -> LambdaHandler:
    """Wrap a $connect/$disconnect handler. No frames here: on $connect the socket is not
    open yet (posting to it answers 410), on $disconnect it is closed. The status code is
    the answer: API Gateway refuses the handshake on anything but 2xx."""

    @functools.wraps(handle)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = WebSocketRequest(APIGatewayWebSocketEvent(event), get_container())
        logger.append_keys(connection_id=request.connection_id)
        try:
            handle(request)
        except ChatError as refusal:
            logger.warning("Connection refused", extra={"code": refusal.code.value, "reason": refusal.message})
            return {"statusCode": refusal.status_code}
        except Exception:
            logger.exception("Unhandled error")
            return {"statusCode": 500}
        return {"statusCode": 200}

    return lambda_handler
