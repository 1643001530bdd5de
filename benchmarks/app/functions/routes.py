"""The app's other routes: each reads its connection's record and answers its sender."""

from __future__ import annotations

import json
from typing import Any

from common import connections, endpoint, logger, management_client

__all__ = ["ack_messages", "list_conversations", "presence", "send_message", "sync_messages", "typing"]


def _answer(event: dict[str, Any], kind: str) -> dict[str, int]:
    connection_id = event["requestContext"]["connectionId"]
    record = connections.get_item(Key={"connectionId": connection_id}).get("Item") or {}
    reply = json.dumps({"type": kind, "userId": record.get("userId")}).encode()
    management_client(endpoint(event)).post_to_connection(ConnectionId=connection_id, Data=reply)
    return {"statusCode": 200}


@logger.inject_lambda_context
def send_message(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _answer(event, "sent")


@logger.inject_lambda_context
def sync_messages(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _answer(event, "sync")


@logger.inject_lambda_context
def ack_messages(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _answer(event, "acked")


@logger.inject_lambda_context
def typing(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _answer(event, "typing")


@logger.inject_lambda_context
def list_conversations(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _answer(event, "conversations")


@logger.inject_lambda_context
def presence(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _answer(event, "presence")
