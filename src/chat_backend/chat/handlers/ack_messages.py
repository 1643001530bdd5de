"""ackMessages: the recipient's device confirms it holds messages; tell their senders."""

from aws_lambda_powertools import Logger

from chat.domain.models import AckMessagesRequest
from chat.domain.protocol import parse_frame
from chat.handlers.websocket import WebSocketRequest, message_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@message_route
def lambda_handler(request: WebSocketRequest) -> None:
    caller = request.caller
    request.messaging().confirm(caller, parse_frame(AckMessagesRequest, request.body))
