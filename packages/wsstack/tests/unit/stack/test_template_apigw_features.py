"""Reading the API Gateway features of a template: what works, and what stops start-up in one sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wsstack.template import TemplateError, load_app, resolve_stage_variables

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "apigw_features"


def variant(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "app" / "template.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_fixture_reads_as_on_aws() -> None:
    api = load_app(FIXTURE / "template.yaml").apis["FeaturesApi"]

    live = api.settings("live")
    assert live.variables == {"tableName": "Notes_live", "greeting": "hello", "echoFunction": {"Ref": "EchoFunction"}}
    resolved = resolve_stage_variables(api, {"EchoFunction": "echo-fn"}, {}).settings("live").variables
    assert resolved == {"tableName": "Notes_live", "greeting": "hello", "echoFunction": "echo-fn"}
    assert (live.throttle("echo").burst_limit, live.throttle("burst").burst_limit) == (100, 2)
    assert api.routes["$connect"].api_key_required
    assert api.routes["note"].request_models["note"]["required"] == ["action", "text"]
    keys = {key.logical_id: key for key in api.api_keys["live"]}
    assert sorted(keys) == ["DeveloperKey", "DisabledKey", "GeneratedKey"]  # UnattachedKey is in no plan
    assert keys["DisabledKey"].enabled is False  # CloudFormation creates keys disabled unless Enabled: true
    generated = keys["GeneratedKey"]
    assert generated.generated and len(generated.value) == 40
    assert load_app(FIXTURE / "template.yaml").apis["FeaturesApi"].api_keys["live"][1].value == generated.value


@pytest.mark.parametrize(
    ("old", "new", "sentence"),
    [
        ("      RouteKey: echo\n", "      RouteKey: echo\n      ApiKeyRequired: true\n",
         "EchoRoute (route 'echo') sets ApiKeyRequired; WebSocket APIs support API keys on $connect only."),
        ("        note: Note\n", "        note: Nope\n", "RequestModels names model 'Nope'"),
        ("          text: {type: string, minLength: 1, maxLength: 140}",
         "          text: {type: string, minLength: -1}", "NoteModel: Schema is not a valid JSON schema (draft 4)"),
        ("      UsagePlanName: fixture-features\n",
         "      UsagePlanName: fixture-features\n      Quota: {Limit: 100, Period: DAY}\n",
         "FeaturesPlan: Quota is not enforced by the local stack"),
        ("      Value: fixture-developer-key-0123456789", "      Value: short",
         "DeveloperKey: Value must be at least 20 characters"),
        ("      ApiKeySelectionExpression: $request.header.x-api-key",
         "      ApiKeySelectionExpression: $request.header.other", "ApiKeySelectionExpression"),
        ("          ThrottlingBurstLimit: 2\n", "          ThrottlingBurstLimit: lots\n",
         "LiveStage RouteSettings 'burst': ThrottlingBurstLimit must be an integer"),
        ("      ApiKeyRequired: true\n",
         "      ApiKeyRequired: true\n      RequestParameters:\n"
         "        route.request.header.X-Device: {Required: true}\n",
         "ConnectRoute (route '$connect'): RequestParameters route.request.header.X-Device Required: true is not "
         "enforced"),
        ("      UsagePlanName: fixture-features\n",
         "      UsagePlanName: fixture-features\n      Throttle: {BurstLimit: 1, RateLimit: 1}\n",
         "FeaturesPlan: Throttle is not enforced by the local stack"),
    ],
)
def test_what_cannot_run_as_on_aws_stops_start_up_naming_resource_and_property(
    tmp_path: Path, old: str, new: str, sentence: str
) -> None:
    with pytest.raises(TemplateError) as refused:
        load_app(variant(tmp_path, old, new))

    assert sentence in str(refused.value)


def test_the_banner_names_the_keys_a_connect_accepts_the_generated_one_included() -> None:
    from wsstack.cli import _banner
    from wsstack.stack import ApiInfo, StackInfo

    app = load_app(FIXTURE / "template.yaml")
    api = ApiInfo(api="FeaturesApi", name="fixture-features", api_id="abcdefghij", stage="live",
                  websocket_url="ws://127.0.0.1:1/live", connections_url="http://127.0.0.1:1/live/@connections")
    info = StackInfo(websocket_url=api.websocket_url, connections_url=api.connections_url,
                     aws_endpoint="http://127.0.0.1:2", region="us-east-1", user_pool_id=None,
                     user_pool_client_id=None, apis=[api])
    generated = next(k for k in app.apis["FeaturesApi"].api_keys["live"] if k.generated)

    banner = _banner(info, app, Path("state.json"), 1.0)

    assert "  API keys          fixture-developer-key-0123456789  (x-api-key; DeveloperKey)\n" in banner
    assert f"{generated.value}  (x-api-key; GeneratedKey, generated)" in banner
    assert "fixture-disabled-key" not in banner and "fixture-unattached-key" not in banner


def test_a_stage_variable_naming_something_unknown_stops_start_up_naming_it() -> None:
    api = load_app(FIXTURE / "template.yaml").apis["FeaturesApi"]

    with pytest.raises(TemplateError) as refused:
        resolve_stage_variables(api, {}, {})

    assert str(refused.value).startswith("FeaturesApi stage live: StageVariables echoFunction: Ref EchoFunction")


SAM_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      StageName: dev
      RouteSelectionExpression: $request.body.action
      ApiKeySelectionExpression: $request.header.x-api-key
      StageVariables: {mode: sam}
      DefaultRouteSettings: {ThrottlingBurstLimit: 5, ThrottlingRateLimit: 1}
      Routes:
        $connect:
          FunctionArn: !GetAtt Fn.Arn
          ApiKeyRequired: true
        note:
          FunctionArn: !GetAtt Fn.Arn
          ModelSelectionExpression: $request.body.action
          RequestModels: {note: Note}
  Note:
    Type: AWS::ApiGatewayV2::Model
    Properties: {ApiId: !Ref Api, Name: Note, ContentType: application/json, Schema: {type: object}}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: echo.handler, Runtime: python3.13}
"""


def test_the_sam_spelling_of_the_same_features_reads_the_same(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "template.yaml").write_text(SAM_TEMPLATE)

    api = load_app(tmp_path / "template.yaml").apis["Api"]

    assert api.settings("dev").variables == {"mode": "sam"}
    assert api.settings("dev").throttle("note").burst_limit == 5
    assert api.routes["$connect"].api_key_required
    assert api.routes["note"].request_models == {"note": {"type": "object"}}
