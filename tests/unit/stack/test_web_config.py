"""scripts/web_config.py: the web chat's config.json from a deployed stack's outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[3]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_config", ROOT / "scripts" / "web_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


web_config = _script()

OUTPUTS = {
    "WebSocketURL": "wss://abc123.execute-api.eu-west-1.amazonaws.com/dev",
    "UserPoolId": "eu-west-1_AbCdEf",
    "UserPoolClientId": "client123",
    "ConnectionsURL": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev/@connections",
}


class FakeCloudFormation:
    """describe_stacks as CloudFormation answers it, for one stack."""

    def __init__(self, name: str, outputs: dict[str, str], region: str = "eu-west-1") -> None:
        self.name, self.outputs = name, outputs
        self.meta = SimpleNamespace(region_name=region)

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName != self.name:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not "
                                         "exist"}}, "DescribeStacks")
        return {"Stacks": [{"Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]}]}


def test_the_stack_name_defaults_to_samconfigs() -> None:
    assert web_config.default_stack_name(ROOT / "samconfig.toml") == "messageai-chat"


def test_config_json_has_the_keys_of_the_local_stacks_state_file(tmp_path: Path) -> None:
    output = tmp_path / "config.json"
    code = web_config.main(["--stack-name", "chat", "--output", str(output)], FakeCloudFormation("chat", OUTPUTS))
    assert code == 0
    assert json.loads(output.read_text()) == {
        "stack_name": "chat", "region": "eu-west-1", "websocket_url": OUTPUTS["WebSocketURL"],
        "user_pool_id": "eu-west-1_AbCdEf", "user_pool_client_id": "client123",
    }


def test_an_unknown_stack_is_one_sentence_and_no_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "config.json"
    code = web_config.main(["--stack-name", "other", "--output", str(output)], FakeCloudFormation("chat", OUTPUTS))
    assert code == 2 and not output.exists()
    assert "stack other could not be read" in capsys.readouterr().err


def test_a_stack_without_the_outputs_names_the_missing_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {k: v for k, v in OUTPUTS.items() if k != "UserPoolClientId"}
    code = web_config.main(["--stack-name", "chat", "--output", str(tmp_path / "c.json")],
                           FakeCloudFormation("chat", outputs))
    assert code == 2
    assert "has no output UserPoolClientId" in capsys.readouterr().err
