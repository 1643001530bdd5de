#!/usr/bin/env python3
"""Deploy the built template (``sam build`` first) to LocalStack with ``sam deploy``.

``AWS_ENDPOINT_URL`` names LocalStack; boto3 and ``sam`` honour it, so the template deploys
unchanged. Only parameters differ from an AWS deployment, because LocalStack's Cognito names
itself in its tokens:

- ``CognitoIssuerBaseUrl``: the ``iss`` of LocalStack's tokens is ``<base>/<pool id>``, with a
  base that follows its configuration (``http://localhost.localstack.cloud:4566`` by default).
  It is read from a real token: a throwaway pool, client and user, signed in once, then removed.
- ``CognitoKeysBaseUrl``: LocalStack serves each pool's keys at
  ``<its address>/<pool id>/.well-known/jwks.json``, under any host name that reaches it.
- ``ConnectionsEndpointUrl``: LocalStack serves ``@connections`` at its own address, without
  the stage in the path.

The last two name LocalStack as the Lambda functions it runs reach it
(``localhost.localstack.cloud``, which its DNS resolves to itself for them).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import jwt
from botocore.exceptions import BotoCoreError, ClientError

#: LocalStack as its own Lambda containers reach it.
FUNCTION_ENDPOINT = "http://localhost.localstack.cloud:4566"
_PROBE_PASSWORD = "Probe-Passw0rd-1"


def wait_for(cognito: Any, seconds: float) -> None:
    """Return once Cognito answers; LocalStack may still be starting."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            cognito.list_user_pools(MaxResults=1)
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"deploy_localstack: Cognito at {os.environ['AWS_ENDPOINT_URL']} did not answer "
                                 f"within {seconds:.0f} s: {exc}") from None
        time.sleep(2)


def issuer_base(cognito: Any) -> str:
    """The base URL this Cognito puts in its tokens' ``iss``, before ``/<pool id>``."""
    name = f"issuer-probe-{uuid.uuid4().hex[:8]}"
    pool = cognito.create_user_pool(PoolName=name)["UserPool"]["Id"]
    try:
        client = cognito.create_user_pool_client(
            UserPoolId=pool, ClientName=name,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool, Username=name, Password=_PROBE_PASSWORD, Permanent=True)
        tokens = cognito.initiate_auth(
            ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": name, "PASSWORD": _PROBE_PASSWORD},
        )["AuthenticationResult"]
    finally:
        cognito.delete_user_pool(UserPoolId=pool)
    # Only the claim is read; the authorizer verifies signatures against the keys.
    issuer = str(jwt.decode(tokens["IdToken"], options={"verify_signature": False})["iss"])
    if not issuer.endswith(f"/{pool}"):
        raise SystemExit(f"deploy_localstack: the token's iss {issuer!r} does not end with the pool id {pool!r}.")
    return issuer[: -len(pool) - 1]


def sam_deploy_command(args: argparse.Namespace, issuer: str) -> list[str]:
    overrides = {
        "NameSuffix": args.name_suffix,
        "StageName": args.stage,
        "CognitoIssuerBaseUrl": issuer,
        "CognitoKeysBaseUrl": args.function_endpoint,
        "ConnectionsEndpointUrl": args.function_endpoint,
    }
    return [
        "sam", "deploy", "--stack-name", args.stack_name, "--region", args.region,
        "--capabilities", "CAPABILITY_IAM", "--resolve-s3", "--no-confirm-changeset", "--no-fail-on-empty-changeset",
        "--parameter-overrides", *(f"{name}={value}" for name, value in overrides.items()),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default="chat-localstack", help="(default: %(default)s)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"), help="(default: %(default)s)")
    parser.add_argument("--name-suffix", default="localstack", help="NameSuffix (default: %(default)s)")
    parser.add_argument("--stage", default="dev", help="StageName (default: %(default)s)")
    parser.add_argument("--function-endpoint", default=FUNCTION_ENDPOINT, metavar="URL",
                        help="LocalStack as its Lambda functions reach it (default: %(default)s)")
    parser.add_argument("--wait", type=float, default=120, metavar="SECONDS",
                        help="how long LocalStack may take to answer (default: %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the sam deploy command instead of running it")
    args = parser.parse_args(argv)
    if not os.environ.get("AWS_ENDPOINT_URL"):
        parser.error("AWS_ENDPOINT_URL must name LocalStack (e.g. http://localhost:4566); it is not set.")

    cognito = boto3.client("cognito-idp", region_name=args.region)
    wait_for(cognito, args.wait)
    issuer = issuer_base(cognito)
    command = sam_deploy_command(args, issuer)
    print(f"deploy_localstack: tokens name {issuer}/<pool id>; running: {shlex.join(command)}", flush=True)
    if args.dry_run:
        return 0
    return subprocess.run(command, env={**os.environ, "SAM_CLI_TELEMETRY": "0"}, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
