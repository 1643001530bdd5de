"""Echo: post each message body back to the connection that sent it, via ``@connections``.

The reply goes through the management API rather than the route's return value, so a round
trip exercises the whole path a real backend uses: gateway -> Lambda -> @connections -> socket.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3

__all__ = ["lambda_handler"]


@cache
def _client(endpoint_url: str) -> Any:
    # One client per process (per endpoint): building a boto3 client costs milliseconds,
    # far more than the post itself.
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url)


# Created at cold start so no invocation pays for it.
if os.environ.get("CONNECTIONS_ENDPOINT_URL"):
    _client(os.environ["CONNECTIONS_ENDPOINT_URL"])


def _endpoint(event: dict[str, Any]) -> str:
    configured = os.environ.get("CONNECTIONS_ENDPOINT_URL")
    if configured:
        return configured
    context = event["requestContext"]
    return f"https://{context['domainName']}/{context['stage']}"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    body = event.get("body") or ""
    connection_id = event["requestContext"]["connectionId"]
    # "whoami" gets the connection's id back, so the bench can time this very call on its own.
    reply = connection_id if body == "whoami" else body
    _client(_endpoint(event)).post_to_connection(ConnectionId=connection_id, Data=reply.encode("utf-8"))
    return {"statusCode": 200}
