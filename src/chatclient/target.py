"""Where a chat backend lives: the local stack's state file or a deployed stack's outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

__all__ = ["TABLE_OUTPUTS", "Target"]

#: The template's tables by logical id, and the stack output that names each one once deployed.
TABLE_OUTPUTS = {
    "ConnectionsTable": "ConnectionsTableName",
    "UserConnectionsTable": "UserConnectionsTableName",
    "MessagesTable": "MessagesTableName",
    "ConversationsTable": "ConversationsTableName",
}


@dataclass(frozen=True)
class Target:
    """The facts a client needs; the same for the local stack and for AWS."""

    websocket_url: str
    region: str
    user_pool_id: str
    user_pool_client_id: str
    #: The AWS endpoint to use for Cognito (the emulator), or None for real AWS.
    aws_endpoint: str | None = None

    @classmethod
    def from_state_file(cls, path: Path) -> Target:
        """Read the file ``wsstack up`` writes (``.local/stack.json`` by default)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SystemExit(f"No local stack state at {path}: start the stack with `make up` first.") from None
        return cls(
            websocket_url=data["websocket_url"],
            region=data["region"],
            user_pool_id=data["user_pool_id"],
            user_pool_client_id=data["user_pool_client_id"],
            aws_endpoint=data["aws_endpoint"],
        )

    @classmethod
    def from_cloudformation(cls, stack_name: str, region: str) -> Target:
        """Read a deployed stack's outputs (``WebSocketURL``, ``UserPoolId``, ``UserPoolClientId``)."""
        stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}
        return cls(
            websocket_url=outputs["WebSocketURL"],
            region=region,
            user_pool_id=outputs["UserPoolId"],
            user_pool_client_id=outputs["UserPoolClientId"],
        )

    def cognito(self) -> Any:
        """A Cognito client for this target (dummy credentials for the emulator)."""
        if self.aws_endpoint is None:
            return boto3.client("cognito-idp", region_name=self.region)
        return boto3.client(
            "cognito-idp", region_name=self.region, endpoint_url=self.aws_endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def dynamodb(self) -> Any:
        """A DynamoDB client for this target (the emulator serves DynamoDB on the same endpoint)."""
        if self.aws_endpoint is None:
            return boto3.client("dynamodb", region_name=self.region)
        return boto3.client(
            "dynamodb", region_name=self.region, endpoint_url=self.aws_endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    @staticmethod
    def tables_from_state_file(path: Path) -> dict[str, str]:
        """The local stack's table names by logical id (the state file's ``resources``)."""
        resources = json.loads(Path(path).read_text(encoding="utf-8"))["resources"]
        return {logical_id: str(resources[logical_id]) for logical_id in TABLE_OUTPUTS}

    @staticmethod
    def tables_from_cloudformation(stack_name: str, region: str) -> dict[str, str]:
        """A deployed stack's table names by logical id, from its ``*TableName`` outputs."""
        stacks = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}
        return {logical_id: outputs[output] for logical_id, output in TABLE_OUTPUTS.items()}
