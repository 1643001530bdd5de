#!/usr/bin/env python3
"""Write web/config.json, the web chat's configuration, from a deployed stack's outputs.

The page reads ``./config.json`` first (then, on the local stack, ``/wsstack.json``). It needs
the stack's ``WebSocketURL``, ``UserPoolId`` and ``UserPoolClientId`` outputs and its region;
the keys are those of the local stack's state file, so the page reads both the same way.
Needs AWS credentials that may call ``cloudformation:DescribeStacks``. The stack name
defaults to samconfig.toml's (``sam deploy``'s), the region to AWS_REGION or the profile's.
The file is not committed (.gitignore): it names one deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ModuleNotFoundError as missing:  # run by an interpreter without the project installed
    sys.exit(f"scripts/web_config.py: {missing.name} is not installed for {sys.executable}; run it with "
             ".venv/bin/python scripts/web_config.py (`make up` or `make test` creates .venv).")

ROOT = Path(__file__).resolve().parent.parent
#: The outputs the page needs, and the key each becomes in config.json.
OUTPUTS = {"WebSocketURL": "websocket_url", "UserPoolId": "user_pool_id", "UserPoolClientId": "user_pool_client_id"}


def default_stack_name(samconfig: Path) -> str | None:
    """``stack_name`` of samconfig.toml's default environment (deploy's, else global), if any."""
    try:
        config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    default = config.get("default", {})
    for command in ("deploy", "global"):
        name = default.get(command, {}).get("parameters", {}).get("stack_name")
        if isinstance(name, str) and name:
            return name
    return None


def web_config(stack_name: str, region: str, outputs: dict[str, str]) -> dict[str, Any]:
    """The page's configuration from a stack's outputs.

    Raises:
        ValueError: an output the page needs is missing; the message names it.
    """
    missing = [name for name in OUTPUTS if not outputs.get(name)]
    if missing:
        raise ValueError(f"stack {stack_name} has no output {', '.join(missing)}; deploy this project's "
                         "template.yaml, which declares them")
    return {"stack_name": stack_name, "region": region, **{key: outputs[name] for name, key in OUTPUTS.items()}}


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def main(argv: list[str] | None = None, cloudformation: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", default=default_stack_name(ROOT / "samconfig.toml"),
                        help="the deployed stack (default: samconfig.toml's, %(default)s)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                        help="its region (default: AWS_REGION, else the profile's)")
    parser.add_argument("--output", default=str(ROOT / "web" / "config.json"),
                        help="file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.stack_name:
        print("web_config: no stack name: pass --stack-name (samconfig.toml names none).", file=sys.stderr)
        return 2
    try:
        if cloudformation is None:
            cloudformation = boto3.client("cloudformation", region_name=args.region)
        region = args.region or cloudformation.meta.region_name
        config = web_config(args.stack_name, region, stack_outputs(cloudformation, args.stack_name))
    except ClientError as exc:
        print(f"web_config: stack {args.stack_name} could not be read in {args.region or 'the default region'}: "
              f"{exc.response['Error'].get('Message', exc)}; check --stack-name and --region.", file=sys.stderr)
        return 2
    except (BotoCoreError, ValueError) as exc:
        print(f"web_config: {exc}.", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}: the page at any static host beside it now talks to {config['websocket_url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
