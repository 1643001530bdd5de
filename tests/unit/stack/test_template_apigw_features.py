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
