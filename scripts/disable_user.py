#!/usr/bin/env python3
"""Disable (or delete) a Cognito user and close every connection they have open.

Cognito's AdminDisableUser and AdminDeleteUser do not revoke tokens already issued: an ID
token stays valid until it expires. The $connect authorizer therefore asks Cognito whether
the user is still enabled (AdminGetUser), and keeps each answer for a short while in a warm
process (USER_STATUS_CACHE_SECONDS, 60 s by default). This command:

1. disables the user in Cognito (``--delete``: deletes them as well);
2. closes each of their open connections with an ``@connections`` DELETE (the ids come from
   the UserConnections table, one GetItem: no Scan);
3. for ``--grace`` seconds (default 60, the authorizer's cache time) closes any connection
   they open again through an authorizer that had admitted them just before step 1. After
   that, every connect of theirs is refused with 403.

Local stack by default (reads the state file ``wsstack up`` writes); a deployed stack with
``--stack-name`` (needs cognito-idp:AdminDisableUser/AdminDeleteUser/AdminGetUser,
dynamodb:GetItem on UserConnections and execute-api:ManageConnections).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from chatclient import Target
    from chatclient.cleanup import user_sub_of
except ModuleNotFoundError as missing:  # run by an interpreter without the project installed
    sys.exit(f"scripts/disable_user.py: {missing.name} is not installed for {sys.executable}; run it with "
             ".venv/bin/python scripts/disable_user.py (`make up` or `make test` creates .venv).")

PROGRAM = "scripts/disable_user.py"
#: How often the grace period looks for connections opened again.
SWEEP_INTERVAL = 1.0


def connections_endpoint(args: argparse.Namespace) -> str:
    """The ``@connections`` base URL (``https://{api}.execute-api.{region}.amazonaws.com/{stage}``)."""
    if args.stack_name:
        stacks = boto3.client("cloudformation", region_name=args.region).describe_stacks(StackName=args.stack_name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}
        url = outputs["ConnectionsURL"]
    else:
        url = json.loads(Path(args.state_file).read_text(encoding="utf-8"))["connections_url"]
    return str(url).removesuffix("/@connections")


def management_client(target: Target, endpoint_url: str) -> Any:
    if target.aws_endpoint is None:
        return boto3.client("apigatewaymanagementapi", region_name=target.region, endpoint_url=endpoint_url)
    # The local gateway takes any SigV4 signature: dummy credentials, as for the emulator.
    return boto3.client(
        "apigatewaymanagementapi", region_name=target.region, endpoint_url=endpoint_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def close_connections(dynamodb: Any, table: str, management: Any, user_sub: str) -> int:
    """DELETE every connection UserConnections lists for the user; how many were open."""
    item = dynamodb.get_item(TableName=table, Key={"userId": {"S": user_sub}}, ConsistentRead=True).get("Item", {})
    closed = 0
    for connection_id in sorted(item.get("connectionIds", {}).get("SS", [])):
        try:
            management.delete_connection(ConnectionId=connection_id)
        except management.exceptions.GoneException:
            continue  # already closed; its $disconnect tidies the set
        closed += 1
    return closed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("username", help="the Cognito username")
    parser.add_argument("--state-file", default=os.environ.get("WSSTACK_STATE_FILE", ".local/stack.json"),
                        help="local stack state file (default: %(default)s)")
    parser.add_argument("--stack-name", help="act on a deployed CloudFormation stack instead")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--delete", action="store_true", help="delete the user after disabling them")
    parser.add_argument("--grace", type=float, default=60.0, metavar="SECONDS",
                        help="keep closing connections they open again for this long: the authorizer's "
                             "USER_STATUS_CACHE_SECONDS (default: %(default)s)")
    args = parser.parse_args()
    if args.grace < 0:
        parser.error("--grace must be 0 or more seconds")

    try:
        if args.stack_name:
            target = Target.from_cloudformation(args.stack_name, args.region)
            tables = Target.tables_from_cloudformation(args.stack_name, args.region)
        else:
            target = Target.from_state_file(Path(args.state_file))
            tables = Target.tables_from_state_file(Path(args.state_file))
        management = management_client(target, connections_endpoint(args))
        dynamodb, cognito = target.dynamodb(), target.cognito()

        user_sub = user_sub_of(target, args.username)
        if user_sub is None:
            print(f"{PROGRAM}: no user {args.username!r} in user pool {target.user_pool_id}.", file=sys.stderr)
            return 2
        cognito.admin_disable_user(UserPoolId=target.user_pool_id, Username=args.username)
        print(f"Disabled {args.username} ({user_sub})")
        if args.delete:
            cognito.admin_delete_user(UserPoolId=target.user_pool_id, Username=args.username)
            print(f"Deleted {args.username}")

        table = tables["UserConnectionsTable"]
        closed = close_connections(dynamodb, table, management, user_sub)
        print(f"Closed {closed} open connection(s)", flush=True)
        deadline = time.monotonic() + args.grace
        reopened = 0
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(SWEEP_INTERVAL, remaining))
            reopened += close_connections(dynamodb, table, management, user_sub)
        if args.grace:
            print(f"Closed {reopened} connection(s) opened again within {args.grace:g} s")
    except (BotoCoreError, ClientError) as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
