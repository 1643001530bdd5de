"""The ``@connections`` management API, served on the gateway's own port.

Lambdas reach it through boto3's ``apigatewaymanagementapi`` client, either with
``endpoint_url=https://{domainName}/{stage}`` built from the event, exactly as on AWS, or
with an explicit local URL. Responses carry what botocore's rest-json parser reads: the
status code, the ``x-amzn-ErrorType`` header naming the error, and a JSON body.

On AWS every ``@connections`` request uses IAM authorization: it must be signed with SigV4,
and an unsigned one gets 403 ``{"message": "Missing Authentication Token"}``. Bound beyond
the loopback interface, where other machines reach it, the local API refuses unsigned
requests the same way (``require_signature``); on 127.0.0.1 it accepts them, for curl. A
signature is never verified, nor what IAM allows its signer: there is no IAM locally.

Requests arrive through :mod:`wsstack.http11` (see :mod:`wsstack.gateway.listener`): this
module only maps a parsed request to the gateway's operations and back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Protocol
from urllib.parse import unquote

from wsstack.gateway.core import Connection
from wsstack.http11 import Request, Response

__all__ = ["ConnectionManager", "ManagementApi", "is_sigv4_signed"]

logger = logging.getLogger("wsstack.gateway")


class ConnectionManager(Protocol):
    """What the management API needs from the gateway."""

    def describe(self, connection_id: str) -> Connection | None:
        """The open connection with this id, or None."""

    async def post(self, connection_id: str, data: bytes) -> bool:
        """Send ``data`` to the client; False when the connection is gone."""

    async def delete(self, connection_id: str) -> bool:
        """Start closing the connection; False when it is gone."""


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})},
    )


def _error(status: int, error_type: str, message: str | None) -> Response:
    # botocore takes the error code from x-amzn-ErrorType and the message from the body.
    return _json(status, {"message": message}, {"x-amzn-ErrorType": error_type})


def _gone() -> Response:
    # AWS answers an unknown or closed connection id with 410 and a null message.
    return _error(410, "GoneException", None)


def _missing_token() -> Response:
    # What API Gateway answers a request to an IAM-authorized resource that is not signed.
    return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def is_sigv4_signed(headers: dict[str, str]) -> bool:
    """True when a request carries a SigV4 ``Authorization`` header (not checked further)."""
    return headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 ")


def _ok(status: int) -> Response:
    return Response(status, b"", {"x-amzn-RequestId": str(uuid.uuid4())})


class ManagementApi:
    """Answers ``/<stage>/@connections/{connectionId}`` requests (an :mod:`wsstack.http11` handler).

    Args:
        manager: The gateway's connection operations.
        stage: The stage name; other paths get 403 ForbiddenException, as on AWS.
        max_payload: Largest POST body; larger ones get 413 PayloadTooLargeException
            (AWS: 128 KB).
        require_signature: Refuse requests without a SigV4 ``Authorization`` header with
            403 MissingAuthenticationTokenException, as AWS does.
    """

    def __init__(
        self, manager: ConnectionManager, stage: str, *, max_payload: int, require_signature: bool = False
    ) -> None:
        self._manager = manager
        self._require_signature = require_signature
        self._prefix = f"/{stage}/@connections/"
        self._max_payload = max_payload
        #: How much of a body the HTTP layer should read: well beyond the limit, so that an
        #: oversize post reaches this API's own 413 (AWS's error shape), not a bare one.
        self.read_limit = max(4 * max_payload, 1024 * 1024)

    def __call__(self, request: Request) -> Response | asyncio.Future[Response]:
        connection_id = self._connection_id(request.path)
        if connection_id is None:
            return _error(403, "ForbiddenException", "Forbidden")
        if self._require_signature and not is_sigv4_signed(request.headers):
            logger.info("@connections %s refused: not signed with SigV4 (status=403)", request.method)
            return _missing_token()
        if request.method == "POST":
            if len(request.body) > self._max_payload:
                return _error(413, "PayloadTooLargeException", "Message too long")
            return asyncio.ensure_future(self._post(connection_id, request.body))
        if request.method == "GET":
            connection = self._manager.describe(connection_id)
            return _gone() if connection is None else _json(200, connection.describe())
        if request.method == "DELETE":
            return asyncio.ensure_future(self._delete(connection_id))
        return _error(403, "ForbiddenException", "Forbidden")

    def _connection_id(self, path: str) -> str | None:
        """The connection id a request path names, or None when it names none.

        The path is percent-decoded once before it is matched, as API Gateway does: boto3
        sends ``/<stage>/%40connections/<id with %3D>``, as AWS's own SigV4 examples for
        ``@connections`` do, and curl may send ``@`` and ``=`` as they are. An encoded ``/``
        (``%2F``) is not a separator on AWS either; it ends up inside the id, which no
        connection has, so such a path is refused like any other that names no id.
        """
        decoded = unquote(path)
        if not decoded.startswith(self._prefix):
            return None
        connection_id = decoded[len(self._prefix):]
        return connection_id if connection_id and "/" not in connection_id else None

    async def _post(self, connection_id: str, data: bytes) -> Response:
        if not await self._manager.post(connection_id, data):
            logger.debug("@connections POST connectionId=%s status=410", connection_id)
            return _gone()
        logger.debug("@connections POST connectionId=%s status=200 bytes=%d", connection_id, len(data))
        return _ok(200)

    async def _delete(self, connection_id: str) -> Response:
        if not await self._manager.delete(connection_id):
            return _gone()
        logger.debug("@connections DELETE connectionId=%s status=204", connection_id)
        return _ok(204)
