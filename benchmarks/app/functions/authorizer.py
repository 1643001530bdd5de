"""REQUEST authorizer of $connect: a fixed token is allowed, anything else denied."""

from __future__ import annotations

from typing import Any

from common import logger

__all__ = ["lambda_handler"]

TOKEN = "bench-token"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token", "")
    effect = "Allow" if token == TOKEN else "Deny"
    return {
        "principalId": "bench-user",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}],
        },
        "context": {"userId": "bench-user"},
    }
