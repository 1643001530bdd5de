"""findUsers: people in the user pool whose name, username or email starts with a query."""

from aws_lambda_powertools import Logger

from chat.domain.models import FindUsersRequest
from chat.domain.protocol import parse_frame
from chat.handlers.websocket import WebSocketRequest, message_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@message_route
def lambda_handler(request: WebSocketRequest) -> None:
    caller = request.caller
    frame = parse_frame(FindUsersRequest, request.body)
    request.container.directory_service(request.notifier).find(caller, frame)
