"""$default: post the body back to its sender through ``https://{domainName}/{stage}``."""

from __future__ import annotations

from typing import Any

from common import endpoint, logger, management_client

__all__ = ["lambda_handler"]


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    body = event.get("body") or ""
    connection_id = event["requestContext"]["connectionId"]
    # "whoami" gets the connection's id back, so the bench can time this very call on its own.
    reply = connection_id if body == "whoami" else body
    management_client(endpoint(event)).post_to_connection(ConnectionId=connection_id, Data=reply.encode("utf-8"))
    return {"statusCode": 200}
