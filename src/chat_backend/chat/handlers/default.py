"""$default: frames whose action matches no route get an error naming the known actions.

The route has no route response, so the answer goes out through ``@connections``.
"""

from aws_lambda_powertools import Logger

from chat.domain.protocol import reject_unknown_action
from chat.handlers.websocket import WebSocketRequest, message_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@message_route
def lambda_handler(request: WebSocketRequest) -> None:
    reject_unknown_action(request.body)
