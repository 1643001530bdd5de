"""$connect: remember which user the new connection belongs to."""

from aws_lambda_powertools import Logger

from chat.handlers.websocket import WebSocketRequest, connection_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@connection_route
def lambda_handler(request: WebSocketRequest) -> None:
    request.container.connection_service().open(request.connection_id, request.caller.user)
