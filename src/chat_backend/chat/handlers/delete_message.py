"""deleteMessage: the sender takes a message back; both participants are told."""

from aws_lambda_powertools import Logger

from chat.domain.models import DeleteMessageRequest
from chat.domain.protocol import parse_frame
from chat.handlers.websocket import WebSocketRequest, message_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@message_route
def lambda_handler(request: WebSocketRequest) -> None:
    caller = request.caller
    request.messaging().delete(caller, parse_frame(DeleteMessageRequest, request.body))
