"""What every WebSocket handler shares: reading the event, and answering errors.

This is the one place where outcomes become responses. On message routes a
:class:`ChatError` becomes an ``error`` frame with its code and sentence, and anything
else becomes ``INTERNAL`` (the trace goes to the log, never to the client).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat.config import Container, get_container
from chat.domain.errors import ChatError, ConnectionGone, ErrorCode, Forbidden
from chat.domain.models import Caller, Identity
from chat.domain.ports import Notifier
from chat.domain.protocol import error_frame
from chat.domain.services import MessagingService

__all__ = ["INTERNAL_ERROR_TEXT", "WebSocketRequest", "connection_route", "identity_of", "message_route"]

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
    def notifier(self) -> Notifier:
        context = self.event.request_context
        return self.container.notifier(self.container.connections_endpoint_for(context.domain_name, context.stage))

    def messaging(self) -> MessagingService:
        return self.container.messaging_service(self.notifier)


def _reply(request: WebSocketRequest, frame: dict[str, Any]) -> None:
    """Best effort: an error frame that cannot be delivered is only logged."""
    try:
        request.notifier.post(request.connection_id, frame)
    except ConnectionGone:
        logger.info("Caller left before its error frame could be sent")
    except Exception:
        logger.exception("Could not send the error frame")


def message_route(handle: Callable[[WebSocketRequest], None]) -> LambdaHandler:
    """Wrap a message-route handler: refusals and faults become ``error`` frames.

    Returns 200 when ``handle`` returns, the refusal's status (400, 403, ...) for a
    :class:`ChatError`, and 500 for anything else.
    """

    @functools.wraps(handle)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = WebSocketRequest(APIGatewayWebSocketEvent(event), get_container())
        logger.append_keys(connection_id=request.connection_id)
        try:
            handle(request)
        except ChatError as refusal:
            logger.info("Frame refused", extra={"code": refusal.code.value, "reason": refusal.message})
            _reply(request, error_frame(refusal.code, refusal.message, refusal.message_id))
            return {"statusCode": refusal.status_code}
        except Exception:
            logger.exception("Unhandled error")
            _reply(request, error_frame(ErrorCode.INTERNAL, INTERNAL_ERROR_TEXT))
            return {"statusCode": 500}
        return {"statusCode": 200}

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
