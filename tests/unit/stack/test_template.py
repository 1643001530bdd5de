"""The template is read through aws-sam-translator into what the local stack runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wsstack.model import Function
from wsstack.stack import ApiInfo, _warn_unenforced, function_environment, local_endpoints
from wsstack.template import TemplateError, load_app, resolve

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def app():
    return load_app(ROOT / "template.yaml")


def test_chat_template_functions_come_from_the_translated_serverless_functions(app):
    # At least these: the chat template grows with the protocol.
    assert set(app.functions) >= {
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
    assert set(api.routes) >= {"$connect", "$disconnect", "sendMessage", "syncMessages", "$default"}
    connect = api.routes["$connect"]
    assert connect.function == "ConnectFunction"
    assert connect.authorizer is not None
    assert connect.authorizer.function == "AuthorizerFunction"
    assert connect.authorizer.identity_sources == ("route.request.querystring.token",)
    assert api.routes["sendMessage"].authorizer is None
    # Replies travel through @connections, so these routes have no route response.
    assert not any(api.routes[key].two_way for key in ("sendMessage", "syncMessages", "$default"))


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
          JavaFunction:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: .
              Handler: example.Handler::handleRequest
              Runtime: java21
    """)
    with pytest.raises(TemplateError, match=r"JavaFunction: runtime 'java21' is not supported; use a python3\.x "
                       r"runtime or nodejs20\.x or nodejs22\.x\."):
        load_app(path)


def test_function_environment_resolves_refs_and_applies_only_declared_overrides(app):
    fn: Function = app.functions["AuthorizerFunction"]
    tables = {t.logical_id: f"{t.logical_id}-local" for t in app.of_type("AWS::DynamoDB::Table")}
    refs = {**tables, "ConnectionsTable": "C", "MessagesTable": "M", "UserPool": "pool-1",
            "UserPoolClient": "client-1"}
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


def test_a_function_is_named_by_its_function_name_where_the_template_sets_one(app, tmp_path):
    send = app.functions["SendMessageFunction"]
    assert (send.logical_id, send.name) == ("SendMessageFunction", "websocket-sendMessage_dev")
    renamed = load_app(ROOT / "template.yaml", {"NameSuffix": "AlexHo"}).functions["SendMessageFunction"]
    assert renamed.name == "websocket-sendMessage_AlexHo"

    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return event\n")
    unnamed = load_app(_write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          EchoFunction:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: .
              Handler: echo.handler
              Runtime: python3.13
    """)).functions["EchoFunction"]
    assert (unnamed.function_name, unnamed.name) == (None, "EchoFunction")


def test_two_functions_of_one_name_are_refused(tmp_path):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return event\n")
    path = _write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Globals:
          Function:
            CodeUri: .
            Handler: echo.handler
            Runtime: python3.13
        Resources:
          OneFunction:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: echo
          TwoFunction:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: !Sub "${AWS::Partition}-echo"
          ThreeFunction:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: aws-echo
    """)
    with pytest.raises(TemplateError, match=r"^TwoFunction and ThreeFunction are both named 'aws-echo'"):
        load_app(path)


def test_env_vars_may_name_a_function_by_its_function_name_below_its_logical_id(app):
    fn = app.functions["SendMessageFunction"]
    overrides = {
        "websocket-sendMessage_dev": {"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_SERVICE_NAME": "by-name"},
        "SendMessageFunction": {"POWERTOOLS_SERVICE_NAME": "by-logical-id"},
    }
    refs = {t.logical_id: t.logical_id for t in app.of_type("AWS::DynamoDB::Table")}
    refs["UserPool"] = "UserPool"  # the function checks recipients in the pool

    env = function_environment(app, fn, refs, overrides, aws_endpoint="http://127.0.0.1:9")

    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert env["POWERTOOLS_SERVICE_NAME"] == "by-logical-id"  # sam local's precedence


# ----------------------------------------------------------------- fixture apps

FIXTURES = ROOT / "packages" / "wsstack" / "tests" / "fixtures"


def test_serverless_websocket_api_becomes_routes_authorizer_and_stage():
    app = load_app(FIXTURES / "sam_websocket_api" / "template.yaml")

    (api,) = app.apis.values()
    assert (api.logical_id, api.name, api.stages) == ("NotesApi", "fixture-notes", ("test",))
    assert set(api.routes) == {"$connect", "echo", "env", "boom", "slow", "push", "reply"}
    connect = api.routes["$connect"]
    assert (connect.function, connect.authorization_type) == ("ConnectFunction", "CUSTOM")
    assert connect.authorizer is not None
    assert connect.authorizer.function == "AuthorizerFunction"
    assert connect.authorizer.identity_sources == ("route.request.querystring.token",)
    # Raw RouteResponses on SAM's generated routes make exactly those routes two-way.
    assert {key for key, route in api.routes.items() if route.two_way} == {"echo", "env"}
    assert app.functions["SlowFunction"].timeout == 1
    assert app.functions["SlowFunction"].reserved_concurrency == 1


def test_raw_apis_with_several_stages_and_plain_lambda_functions():
    app = load_app(FIXTURES / "raw_two_apis" / "template.yaml")

    assert {api.logical_id: api.stages for api in app.apis.values()} == {
        "PublicApi": ("dev", "prod"),
        "AdminApi": ("live",),
    }
    admin = app.apis["AdminApi"]
    assert admin.route_selection_expression == "$request.body.meta.kind"
    assert admin.routes["$connect"].authorizer.identity_sources == ("route.request.header.X-Admin-Key",)
    # AWS::Lambda::Function with a local folder as Code, as `sam build` accepts it.
    assert app.functions["WhoAmIFunction"].code_dir == FIXTURES / "raw_two_apis" / "src"


_ONE_ROUTE = """
    Transform: AWS::Serverless-2016-10-31
    Resources:
      EchoFunction:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: .
          Handler: echo.handler
          Runtime: python3.13
      Api:
        Type: AWS::ApiGatewayV2::Api
        Properties:
          ProtocolType: WEBSOCKET
          RouteSelectionExpression: $request.body.action
      EchoRoute:
        Type: AWS::ApiGatewayV2::Route
        Properties:
          ApiId: !Ref Api
          RouteKey: echo
          Target: !Sub integrations/${EchoIntegration}
      EchoIntegration:
        Type: AWS::ApiGatewayV2::Integration
        Properties:
          ApiId: !Ref Api
          IntegrationType: %s
          IntegrationUri: %s
"""
_LAMBDA_URI = (
    "!Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
    "${EchoFunction.Arn}/invocations"
)


@pytest.mark.parametrize(
    ("kind", "uri"),
    [
        ("HTTP_PROXY", "https://example.com/echo"),
        ("HTTP", "https://example.com/echo"),
        ("MOCK", "''"),
        ("AWS", _LAMBDA_URI),  # Lambda without proxy: request and response mapping templates
    ],
)
def test_an_integration_the_stack_cannot_run_is_named_with_its_route_and_the_fix(tmp_path, kind, uri):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return None\n")
    path = _write(tmp_path, _ONE_ROUTE % (kind, uri))

    with pytest.raises(TemplateError) as error:
        load_app(path)

    message = str(error.value)
    assert message.startswith("EchoRoute (route 'echo') uses integration EchoIntegration of type " + kind)
    assert "IntegrationType: AWS_PROXY" in message
    assert message.endswith(".") and ". " not in message and "\n" not in message  # one sentence


def test_a_proxy_integration_to_a_function_outside_the_template_is_named(tmp_path):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return None\n")
    outside = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:1:function:x/invocations"
    )
    path = _write(tmp_path, _ONE_ROUTE % ("AWS_PROXY", outside))

    with pytest.raises(TemplateError, match=r"EchoRoute \(route 'echo'\): integration EchoIntegration does not "
                                            r"point at a function of this template"):
        load_app(path)


def test_aws_proxy_integration_is_read_as_the_route_function(tmp_path):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return None\n")

    app = load_app(_write(tmp_path, _ONE_ROUTE % ("AWS_PROXY", _LAMBDA_URI)))

    assert app.apis["Api"].routes["echo"].function == "EchoFunction"
    assert app.apis["Api"].stages == ("$default",)  # no Stage resource


@pytest.mark.parametrize(("millis", "seconds"), [(None, None), ("50", 0.05), ("29000", 29.0)])
def test_an_integrations_timeout_in_millis_is_the_routes_timeout(tmp_path, millis, seconds):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return None\n")
    body = _ONE_ROUTE % ("AWS_PROXY", _LAMBDA_URI)
    if millis is not None:
        body += f"          TimeoutInMillis: {millis}\n"

    app = load_app(_write(tmp_path, body))

    assert app.apis["Api"].routes["echo"].timeout == seconds


@pytest.mark.parametrize("millis", ["49", "29001", "soon"])
def test_a_timeout_in_millis_api_gateway_refuses_is_named(tmp_path, millis):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return None\n")
    body = _ONE_ROUTE % ("AWS_PROXY", _LAMBDA_URI) + f"          TimeoutInMillis: {millis}\n"

    with pytest.raises(TemplateError, match=r"EchoRoute \(route 'echo'\): integration EchoIntegration has "
                                            r"TimeoutInMillis .*; API Gateway accepts 50 to 29000\."):
        load_app(_write(tmp_path, body))


# ------------------------------------------------------- resolving intrinsics locally


def test_runtime_attributes_come_from_refs_and_sub_escapes_stay_literal(app):
    refs = {"MessagesTable": "M", "MessagesTable.StreamArn": "arn:aws:dynamodb:us-east-1:1:table/M/stream/x"}

    value = {
        "stream": {"Fn::GetAtt": ["MessagesTable", "StreamArn"]},
        "sub": {"Fn::Sub": "${MessagesTable.StreamArn}|${!Literal}"},
        "pool": {"Fn::GetAtt": ["UserPool", "UserPoolId"]},
    }

    assert resolve(value, {**refs, "UserPool": "pool-1"}, app.parameters, resources=app.resources) == {
        "stream": "arn:aws:dynamodb:us-east-1:1:table/M/stream/x",
        "sub": "arn:aws:dynamodb:us-east-1:1:table/M/stream/x|${Literal}",
        "pool": "pool-1",
    }


def test_an_environment_variable_that_cannot_be_resolved_names_function_and_variable(app):
    fn = app.functions["SendMessageFunction"]
    broken = Function(**{**fn.__dict__, "environment": {"QUEUE": {"Ref": "GhostQueue"}}})

    with pytest.raises(TemplateError, match=r"^SendMessageFunction: environment variable QUEUE: Ref GhostQueue"):
        function_environment(app, broken, {}, {}, aws_endpoint="http://127.0.0.1:9")


def test_aws_urls_of_served_stages_are_rewritten_to_local_ones(app):
    stage = ApiInfo(
        api="Api", name="Api", api_id="abc123defg", stage="dev",
        websocket_url="ws://127.0.0.1:4001/dev", connections_url="http://127.0.0.1:4002/dev/@connections",
    )
    fn = app.functions["SendMessageFunction"]
    urls = {
        "CONNECTIONS": {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/dev"},
        "CONNECTIONS_PATH": {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/dev/@connections"},
        "SOCKET": {"Fn::Sub": "wss://${Api}.execute-api.${AWS::Region}.amazonaws.com/dev"},
        "ORIGIN": {"Fn::Sub": "wss://${Api}.execute-api.${AWS::Region}.amazonaws.com"},
        "OTHER_STAGE": {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/dev2"},
    }
    with_urls = Function(**{**fn.__dict__, "environment": urls})

    env = function_environment(app, with_urls, {"Api": "abc123defg"}, {}, aws_endpoint="http://127.0.0.1:9",
                               rewrites=local_endpoints([stage]))

    assert env["CONNECTIONS"] == "http://127.0.0.1:4002/dev"
    assert env["CONNECTIONS_PATH"] == "http://127.0.0.1:4002/dev/@connections"
    assert env["SOCKET"] == "ws://127.0.0.1:4001/dev"
    assert env["ORIGIN"] == "ws://127.0.0.1:4001"
    # A stage that is not served keeps its AWS URL rather than pointing at the wrong stage.
    assert env["OTHER_STAGE"] == "https://abc123defg.execute-api.us-east-1.amazonaws.com/dev2"


def test_iam_authorization_is_read_and_flagged_as_checked_only_for_a_signature(tmp_path, caplog):
    (tmp_path / "echo.py").write_text("def handler(event, context):\n    return None\n")
    body = _ONE_ROUTE % ("AWS_PROXY", _LAMBDA_URI)
    body = body.replace("RouteKey: echo", "RouteKey: $connect\n          AuthorizationType: AWS_IAM")
    app = load_app(_write(tmp_path, body))

    _warn_unenforced(app)

    assert app.apis["Api"].routes["$connect"].authorization_type == "AWS_IAM"
    assert [r.getMessage() for r in caplog.records if r.name == "wsstack"] == [
        "Api route $connect uses AWS_IAM authorization: the local stack refuses unsigned upgrades "
        "but does not verify signatures or IAM policies"
    ]
