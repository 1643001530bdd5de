"""The ``@connections`` management API, served with aiohttp.

Lambdas reach it through boto3's ``apigatewaymanagementapi`` client with
``endpoint_url=<management url>``, exactly as they reach
``https://<api>.execute-api.<region>.amazonaws.com/<stage>`` on AWS. Responses carry what
botocore's rest-json parser reads: the status code, the ``x-amzn-ErrorType`` header naming
the error, and a JSON body. SigV4 signatures are accepted without being checked.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from aiohttp import web

from wsstack.gateway.core import Connection

__all__ = ["ConnectionManager", "create_management_app"]

logger = logging.getLogger("wsstack.gateway")


class ConnectionManager(Protocol):
    """What the management API needs from the gateway."""

    def describe(self, connection_id: str) -> Connection | None:
        """The open connection with this id, or None."""

    async def post(self, connection_id: str, data: bytes) -> bool:
        """Send ``data`` to the client; False when the connection is gone."""

    async def delete(self, connection_id: str) -> bool:
        """Start closing the connection; False when it is gone."""


def _error(status: int, error_type: str, message: str | None) -> web.Response:
    # botocore takes the error code from x-amzn-ErrorType and the message from the body.
    return web.json_response(
        {"message": message},
        status=status,
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _gone() -> web.Response:
    # AWS answers an unknown or closed connection id with 410 and a null message.
    return _error(410, "GoneException", None)


def _ok(status: int, body: Any = None) -> web.Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.json_response(body, status=status, headers=headers)


def create_management_app(manager: ConnectionManager, stage: str, *, max_payload: int) -> web.Application:
    """Build the aiohttp application serving ``/<stage>/@connections/{connectionId}``.

    Args:
        manager: The gateway's connection operations.
        stage: The stage name; other paths get 403 ForbiddenException, as on AWS.
        max_payload: Largest POST body; larger ones get 413 PayloadTooLargeException
            (AWS: 128 KB).
    """

    async def post(request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        data = await request.read()
        if len(data) > max_payload:
            return _error(413, "PayloadTooLargeException", "Message too long")
        if not await manager.post(connection_id, data):
            logger.debug("@connections POST connectionId=%s status=410", connection_id)
            return _gone()
        logger.debug("@connections POST connectionId=%s status=200 bytes=%d", connection_id, len(data))
        return _ok(200)

    async def get(request: web.Request) -> web.Response:
        connection = manager.describe(request.match_info["connection_id"])
        if connection is None:
            return _gone()
        return _ok(200, connection.describe())

    async def delete(request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        if not await manager.delete(connection_id):
            return _gone()
        logger.debug("@connections DELETE connectionId=%s status=204", connection_id)
        return _ok(204)

    async def forbidden(request: web.Request) -> web.Response:
        return _error(403, "ForbiddenException", "Forbidden")

    # The body limit is raised above max_payload so oversize posts reach our own 413
    # (with AWS's error shape) instead of aiohttp's.
    app = web.Application(client_max_size=max(max_payload * 4, 1024 * 1024))
    path = f"/{stage}/@connections/{{connection_id}}"
    app.router.add_post(path, post)
    app.router.add_get(path, get, allow_head=False)
    app.router.add_delete(path, delete)
    app.router.add_route("*", "/{tail:.*}", forbidden)
    return app
