"""$connect: record the connection, as a real app does before it can push to it."""

from __future__ import annotations

from typing import Any

from common import connections, logger

__all__ = ["lambda_handler"]


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    context_ = event["requestContext"]
    connections.put_item(Item={"connectionId": context_["connectionId"],
                               "userId": context_["authorizer"]["userId"]})
    return {"statusCode": 200}
