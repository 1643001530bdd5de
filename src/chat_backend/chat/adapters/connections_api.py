"""The notifier: frames to clients through API Gateway's ``@connections`` API."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chat.domain.errors import ConnectionGone
from chat.domain.protocol import encode_frame

__all__ = ["ConnectionsApiNotifier", "connections_endpoint"]


def connections_endpoint(domain_name: str, stage: str) -> str:
    """The ``@connections`` endpoint for a connection, built from its event.

    A custom domain with a base-path mapping needs ``CONNECTIONS_ENDPOINT_URL`` instead.
    """
    return f"https://{domain_name}/{stage}"


class ConnectionsApiNotifier:
    """Posts frames with ``apigatewaymanagementapi.post_to_connection``.

    Args:
        client: a boto3 ``apigatewaymanagementapi`` client bound to the stage's endpoint.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, connection_id: str, frame: dict[str, Any]) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=encode_frame(frame))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") == "GoneException" or status == 410:
                raise ConnectionGone(connection_id) from None
            raise
