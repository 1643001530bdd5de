"""$disconnect: forget the connection."""

from __future__ import annotations

from typing import Any

from common import connections, logger

__all__ = ["lambda_handler"]


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    connections.delete_item(Key={"connectionId": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}
