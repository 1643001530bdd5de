"""$disconnect: forget the connection."""

from aws_lambda_powertools import Logger

from chat.handlers.websocket import WebSocketRequest, connection_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@connection_route
def lambda_handler(request: WebSocketRequest) -> None:
    # The authorizer's identity comes with $disconnect too; it saves reading the row.
    request.container.connection_service().close(request.connection_id, request.user)
