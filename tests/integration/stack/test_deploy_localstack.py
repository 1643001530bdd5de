"""scripts/deploy_localstack.py reads the issuer an emulator's Cognito puts in its tokens and passes it to sam deploy.

Run here against the local stack's emulator (moto), whose tokens keep AWS's issuer; LocalStack's
name LocalStack instead, and the same probe reads that.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wsstack.emulator import Emulator, aws_client
from wsstack.template import load_yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    running = Emulator(port=0)
    try:
        yield running.start()
    finally:
        running.stop()


def test_the_issuer_is_read_from_a_real_token_and_passed_with_the_emulators_addresses(emulator):
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}

    done = subprocess.run(
        [sys.executable, "scripts/deploy_localstack.py", "--dry-run"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60,
    )

    assert done.returncode == 0, done.stderr
    said, _, command = done.stdout.strip().partition("; running: ")
    argv = shlex.split(command)
    overrides = dict(item.split("=", 1) for item in argv[argv.index("--parameter-overrides") + 1:])
    assert said == "deploy_localstack: tokens name https://cognito-idp.us-east-1.amazonaws.com/<pool id>"
    assert argv[:2] == ["sam", "deploy"]
    assert overrides == {
        "NameSuffix": "localstack", "StageName": "dev",
        "CognitoIssuerBaseUrl": "https://cognito-idp.us-east-1.amazonaws.com",
        "CognitoKeysBaseUrl": "http://localhost.localstack.cloud:4566",
        "ConnectionsEndpointUrl": "http://localhost.localstack.cloud:4566",
    }
    # Every override is a parameter of the template, with a value its AllowedPattern accepts:
    # CloudFormation refuses anything else.
    declared = load_yaml(ROOT / "template.yaml")["Parameters"]
    for name, value in overrides.items():
        assert re.fullmatch(declared[name].get("AllowedPattern", ".*"), value), (name, value)
    # The throwaway pool is gone.
    assert aws_client("cognito-idp", emulator).list_user_pools(MaxResults=10)["UserPools"] == []


def test_without_an_emulator_endpoint_nothing_is_created_on_aws():
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}

    done = subprocess.run([sys.executable, "scripts/deploy_localstack.py", "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert "AWS_ENDPOINT_URL must name LocalStack" in done.stderr
