"""What every function of the bench app shares, created once per execution environment."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger

__all__ = ["connections", "logger", "management_client"]

logger = Logger()
connections = boto3.resource("dynamodb").Table(os.environ["CONNECTIONS_TABLE"])


@cache
def management_client(endpoint_url: str) -> Any:
    # One client per endpoint and process: building one costs milliseconds.
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url)


def endpoint(event: dict[str, Any]) -> str:
    """``https://{domainName}/{stage}``: the @connections endpoint of the event's API, as on AWS."""
    context = event["requestContext"]
    return f"https://{context['domainName']}/{context['stage']}"
