"""The template is read through aws-sam-translator into what the local stack runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wsstack.model import Function
from wsstack.stack import function_environment
from wsstack.template import TemplateError, load_app, resolve

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def app():
    return load_app(ROOT / "template.yaml")


def test_chat_template_functions_come_from_the_translated_serverless_functions(app):
    assert set(app.functions) == {
        "AuthorizerFunction", "ConnectFunction", "DisconnectFunction",
        "SendMessageFunction", "SyncMessagesFunction", "DefaultFunction",
    }
    send = app.functions["SendMessageFunction"]
    assert send.handler == "chat.handlers.send_message.lambda_handler"
    assert send.runtime == "python3.13"
    assert send.code_dir == ROOT / "src" / "chat_backend"
    assert send.timeout == 10  # from Globals


def test_chat_template_routes_and_authorizer(app):
    (api,) = app.apis.values()
    assert api.route_selection_expression == "$request.body.action"
    assert api.stages == ("dev",)
    assert set(api.routes) == {"$connect", "$disconnect", "sendMessage", "syncMessages", "$default"}
    connect = api.routes["$connect"]
    assert connect.function == "ConnectFunction"
    assert connect.authorizer is not None
    assert connect.authorizer.function == "AuthorizerFunction"
    assert connect.authorizer.identity_sources == ("route.request.querystring.token",)
    assert api.routes["sendMessage"].authorizer is None
    assert not any(route.two_way for route in api.routes.values())


def test_parameters_override_defaults_and_unknown_ones_are_refused(app):
    custom = load_app(ROOT / "template.yaml", {"NameSuffix": "AlexHo", "StageName": "prod"})
    assert custom.parameters["NameSuffix"] == "AlexHo"
    assert next(iter(custom.apis.values())).stages == ("prod",)
    with pytest.raises(TemplateError, match="Unknown template parameter"):
        load_app(ROOT / "template.yaml", {"Nope": "1"})


def test_resolve_handles_ref_sub_getatt_and_join(app):
    refs = {"MessagesTable": "Messages_dev", "UserPool": "us-east-1_abc"}
    value = {
        "a": {"Ref": "MessagesTable"},
        "b": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"},
        "c": {"Fn::GetAtt": ["MessagesTable", "Arn"]},
        "d": {"Fn::Join": ["-", [{"Ref": "NameSuffix"}, "x"]]},
        "e": {"Fn::Sub": ["${X}/y", {"X": {"Ref": "UserPool"}}]},
    }
    assert resolve(value, refs, app.parameters, resources=app.resources) == {
        "a": "Messages_dev",
        "b": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc",
        "c": "arn:aws:dynamodb:us-east-1:123456789012:table/Messages_dev",
        "d": "dev-x",
        "e": "us-east-1_abc/y",
    }


def test_resolve_names_what_it_cannot_do(app):
    with pytest.raises(TemplateError, match="Fn::FindInMap"):
        resolve({"Fn::FindInMap": ["a", "b", "c"]}, {}, {})
    with pytest.raises(TemplateError, match="Ghost"):
        resolve({"Ref": "Ghost"}, {}, {})


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_missing_handler_file_is_named_with_the_resource(tmp_path):
    (tmp_path / "code").mkdir()
    path = _write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          EchoFunction:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: code/
              Handler: echo.handler
              Runtime: python3.13
    """)
    with pytest.raises(TemplateError, match=r"EchoFunction: handler module echo\.py not found"):
        load_app(path)


def test_unsupported_runtime_is_named(tmp_path):
    path = _write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          NodeFunction:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: .
              Handler: index.handler
              Runtime: nodejs20.x
    """)
    with pytest.raises(TemplateError, match=r"NodeFunction: runtime 'nodejs20\.x' is not supported"):
        load_app(path)


def test_function_environment_resolves_refs_and_applies_only_declared_overrides(app):
    fn: Function = app.functions["AuthorizerFunction"]
    refs = {"ConnectionsTable": "C", "MessagesTable": "M", "UserPool": "pool-1", "UserPoolClient": "client-1"}
    overrides = {
        "Parameters": {"JWKS_URL": "${Local::AwsEndpoint}/${UserPool}/keys", "NOT_DECLARED": "x"},
        "AuthorizerFunction": {"POWERTOOLS_LOG_LEVEL": "DEBUG"},
    }
    env = function_environment(app, fn, {**refs, "Local::AwsEndpoint": "http://127.0.0.1:9"}, overrides,
                               aws_endpoint="http://127.0.0.1:9")
    assert env["USER_POOL_ID"] == "pool-1"
    assert env["USER_POOL_CLIENT_ID"] == "client-1"
    assert env["COGNITO_ISSUER"] == "https://cognito-idp.us-east-1.amazonaws.com/pool-1"
    assert env["JWKS_URL"] == "http://127.0.0.1:9/pool-1/keys"
    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert "NOT_DECLARED" not in env  # as sam local: only declared variables are overridden
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
