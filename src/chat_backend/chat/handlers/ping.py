"""ping: answer pong at once.

A two-way route (the template gives it a ``$default`` route response), so the answer is
this function's return value and costs no ``@connections`` post.
"""

from typing import Any

from aws_lambda_powertools import Logger

from chat.handlers.websocket import WebSocketRequest, two_way_route

__all__ = ["lambda_handler"]

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@two_way_route
def lambda_handler(request: WebSocketRequest) -> dict[str, Any]:
    return request.container.ping_service().pong()
