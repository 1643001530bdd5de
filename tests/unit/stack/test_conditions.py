"""Template Conditions are settled with the parameter values, as CloudFormation settles them at deploy.

The chat template uses them to take the authorizer's issuer and keys from parameters whose
defaults are AWS's own, so the same template verifies tokens of real Cognito, of an emulator's
Cognito (LocalStack's), and of the local stack's.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wsstack.stack import function_environment
from wsstack.template import TemplateError, load_app

ROOT = Path(__file__).resolve().parents[3]
REFS = {"UserPool": "us-east-1_pool", "UserPoolClient": "client-1", "ConnectionsTable": "C", "MessagesTable": "M",
        "UserConnectionsTable": "U", "ConversationsTable": "V"}


def authorizer_environment(parameters: dict[str, str], overrides: dict | None = None) -> dict[str, str]:
    app = load_app(ROOT / "template.yaml", parameters)
    return function_environment(app, app.functions["AuthorizerFunction"], REFS, overrides or {},
                                aws_endpoint="http://127.0.0.1:9")


def test_by_default_the_authorizer_trusts_cognito_itself_and_reads_keys_under_its_issuer():
    env = authorizer_environment({})

    assert env["COGNITO_ISSUER"] == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
    assert env["JWKS_URL"] == ""  # the adapter then reads <issuer>/.well-known/jwks.json
    assert env["CONNECTIONS_ENDPOINT_URL"] == ""  # built from each event's domainName


def test_an_emulators_issuer_keys_and_connections_endpoint_come_from_parameters():
    env = authorizer_environment({
        "CognitoIssuerBaseUrl": "http://localhost.localstack.cloud:4566",
        "CognitoKeysBaseUrl": "http://keys.example:4566",
        "ConnectionsEndpointUrl": "http://localhost.localstack.cloud:4566",
    })

    assert env["COGNITO_ISSUER"] == "http://localhost.localstack.cloud:4566/us-east-1_pool"
    assert env["JWKS_URL"] == "http://keys.example:4566/us-east-1_pool/.well-known/jwks.json"
    assert env["CONNECTIONS_ENDPOINT_URL"] == "http://localhost.localstack.cloud:4566"


def test_the_local_stacks_env_vars_file_still_points_the_keys_at_the_emulator():
    overrides = {"Parameters": {"JWKS_URL": "${Local::AwsEndpoint}/${UserPool}/.well-known/jwks.json"}}
    app = load_app(ROOT / "template.yaml")
    env = function_environment(app, app.functions["AuthorizerFunction"],
                               {**REFS, "Local::AwsEndpoint": "http://127.0.0.1:9"}, overrides,
                               aws_endpoint="http://127.0.0.1:9")

    assert env["COGNITO_ISSUER"] == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
    assert env["JWKS_URL"] == "http://127.0.0.1:9/us-east-1_pool/.well-known/jwks.json"


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return path


APP = """
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Mode:
        Type: String
        Default: dev
      Extra:
        Type: String
        Default: ""
    Conditions:
      IsProd: !Equals [!Ref Mode, prod]
      NotProd: !Not [!Condition IsProd]
      HasExtra: !Not [!Equals [!Ref Extra, ""]]
      ProdWithExtra: !And [!Condition IsProd, !Condition HasExtra]
      InEast: !Or [!Equals [!Ref "AWS::Region", us-east-1], !Equals [!Ref "AWS::Region", us-east-2]]
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: code/
          Handler: app.handler
          Runtime: python3.13
          Environment:
            Variables:
              MODE: !If [IsProd, production, !Sub "dev-${Mode}"]
              EXTRA: !If [HasExtra, !Ref Extra, !Ref "AWS::NoValue"]
              BOTH: !If [ProdWithExtra, "yes", "no"]
              EAST: !If [InEast, "yes", "no"]
      ProdOnly:
        Type: AWS::Serverless::Function
        Condition: IsProd
        Properties:
          CodeUri: code/
          Handler: app.handler
          Runtime: python3.13
"""


def test_fn_if_takes_the_branch_its_condition_picks_and_novalue_drops_the_variable(tmp_path):
    path = _write(tmp_path, APP)

    dev = load_app(path)
    prod = load_app(path, {"Mode": "prod", "Extra": "x"})

    assert dev.functions["Fn"].environment == {"MODE": {"Fn::Sub": "dev-${Mode}"}, "BOTH": "no", "EAST": "yes"}
    assert prod.functions["Fn"].environment == {"MODE": "production", "EXTRA": {"Ref": "Extra"}, "BOTH": "yes",
                                               "EAST": "yes"}
    # A resource whose condition is false is not part of the stack.
    assert "ProdOnly" not in dev.functions
    assert "ProdOnly" in prod.functions


def test_a_condition_the_stack_cannot_settle_is_named(tmp_path):
    path = _write(tmp_path, APP.replace("!Equals [!Ref Mode, prod]", "!Contains [[prod], !Ref Mode]"))

    with pytest.raises(TemplateError, match="Condition IsProd cannot be evaluated locally"):
        load_app(path)


def test_an_undeclared_condition_is_named(tmp_path):
    path = _write(tmp_path, APP.replace("!If [IsProd, production", "!If [IsLive, production"))

    with pytest.raises(TemplateError, match="Condition 'IsLive' is not declared under Conditions"):
        load_app(path)
