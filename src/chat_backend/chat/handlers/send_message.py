"""sendMessage: store, ack, push, and report delivery."""

from aws_lambda_powertools import Logger

from chat.domain.models import SendMessageRequest
from chat.domain.protocol import parse_frame
from chat.handlers.websocket import WebSocketRequest, message_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
# The frame is counted against the rate limit in the same write that stores the message.
@message_route(counts_own_frame=True)
def lambda_handler(request: WebSocketRequest) -> None:
    caller = request.caller
    request.messaging().send(caller, parse_frame(SendMessageRequest, request.body), request.ticket)
