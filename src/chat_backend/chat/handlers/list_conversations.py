"""listConversations: the caller's conversations, latest activity first."""

from aws_lambda_powertools import Logger

from chat.domain.models import ListConversationsRequest
from chat.domain.protocol import parse_frame
from chat.handlers.websocket import WebSocketRequest, message_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@message_route
def lambda_handler(request: WebSocketRequest) -> None:
    caller = request.caller
    frame = parse_frame(ListConversationsRequest, request.body)
    request.container.conversation_service(request.notifier).list(caller, frame)
