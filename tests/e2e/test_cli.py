"""The `wsstack up` process itself: state file, clean Ctrl-C, clear errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from .conftest import ROOT, start_stack

pytestmark = pytest.mark.e2e


def test_up_writes_its_state_and_ctrl_c_stops_everything(tmp_path):
    state_file = tmp_path / "stack.json"
    proc = start_stack(state_file)
    state = json.loads(state_file.read_text())
    assert state["websocket_url"].startswith("ws://127.0.0.1:")
    assert state["user_pool_id"] and state["user_pool_client_id"]
    assert set(state["resources"]) >= {"ConnectionsTable", "MessagesTable", "UserPool"}
    # users.local.json's users exist before ready, so clients can sign in at once.
    assert list(state["users"]) == ["alice", "bob"]

    assert proc.stop() == 0
    assert not state_file.exists()


def test_a_missing_template_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "up", "--template", str(tmp_path / "nope.yaml"), "--port", "0",
         "--tls-port", "0", "--emulator-port", "0", "--state-file", str(tmp_path / "stack.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_users_file_naming_an_unknown_pool_is_a_one_line_error(tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"Pool": [{"username": "a", "password": "Passw0rd-x"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "up", "--users", str(users), "--port", "0", "--tls-port", "0",
         "--emulator-port", "0", "--state-file", str(tmp_path / "state.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"wsstack: users file {users} names 'Pool', which is not a user pool of the template (pools: UserPool)."
    )


# Every sample event is replayed through `wsstack invoke` in test_replay.py.


def test_invoke_names_the_known_functions_by_both_names_when_given_an_unknown_one():
    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "invoke", "NopeFunction", "--fresh"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "SendMessageFunction (websocket-sendMessage_dev)" in result.stderr
    assert "Traceback" not in result.stderr


FIXTURES = ROOT / "packages" / "wsstack" / "tests" / "fixtures"


def _json_lines(output: list[str]) -> list[dict]:
    lines = []
    for line in output:
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_up_serves_every_api_stage_and_logs_json_lines(tmp_path):
    from websockets.sync.client import connect

    state_file = tmp_path / "stack.json"
    proc = start_stack(state_file, "--template", str(FIXTURES / "raw_two_apis" / "template.yaml"),
                       "--log-format", "json")
    try:
        state = json.loads(state_file.read_text())
        assert [(a["api"], a["stage"]) for a in state["apis"]] == [
            ("PublicApi", "dev"), ("PublicApi", "prod"), ("AdminApi", "live")]
        assert state["websocket_url"] == state["apis"][0]["websocket_url"]
        with connect(state["apis"][1]["websocket_url"], open_timeout=10) as ws:
            for _ in range(2):  # a cold start, then a warm invocation
                ws.send(json.dumps({"action": "whoami"}))
                assert json.loads(ws.recv(timeout=10))["stage"] == "prod"
    finally:
        assert proc.stop() == 0

    lines = _json_lines(proc.output)
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    [invocation] = [line for line in lines if line["logger"] == "wsstack.runtime" and "function" in line]
    assert invocation["function"] == "WhoAmIFunction"
    assert invocation["cold_start"] is True and invocation["duration_ms"] > 0 and invocation["request_id"]
    own = [line for line in lines if line["logger"] == "wsstack.fn.WhoAmIFunction"]
    assert [(o["message"], o["log"]["stage"]) for o in own] == [("whoami", "prod")] * 2
    assert own[0]["request_id"] == invocation["request_id"]
    routed = [line for line in lines if line.get("event") == "message"]
    assert [(r["route_key"], r["stage"], r["status"], r["function"]) for r in routed] == [
        ("whoami", "prod", 200, "WhoAmIFunction")] * 2
    # One line per message: the cold start also has the runtime's line; the warm one only the gateway's.
    assert [r["start"] for r in routed] == ["cold", "warm"]
    assert routed[0]["lambda_request_id"] == invocation["request_id"] and routed[0]["init_ms"] > 0
    assert routed[1]["lambda_request_id"] and routed[1]["lambda_ms"] > 0


def test_invoke_takes_an_event_file_and_env_vars_in_sam_format(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"requestContext": {"routeKey": "whoami", "stage": "dev", "apiId": "x"}}))
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({
        "Parameters": {"PROD_STAGE": "from-parameters", "UNDECLARED": "ignored"},
        "WhoAmIFunction": {"ROLE_ARN": "from-function-scope"},
    }))

    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "invoke", "WhoAmIFunction", "-t",
         str(FIXTURES / "raw_two_apis" / "template.yaml"), "-e", str(event), "--env-vars", str(env_vars), "--fresh"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    env = json.loads(json.loads(result.stdout)["body"])["env"]
    assert env["PROD_STAGE"] == "from-parameters"
    assert env["ROLE_ARN"] == "from-function-scope"
    assert env["ADMIN_URL"].startswith("ws://127.0.0.1:")  # the template's own value, localised


def test_a_template_with_an_http_integration_is_refused_in_one_sentence(tmp_path):
    template = (FIXTURES / "raw_two_apis" / "template.yaml").read_text()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "whoami.py").write_text((FIXTURES / "raw_two_apis" / "src" / "whoami.py").read_text())
    broken = template.replace(
        "      ApiId: !Ref PublicApi\n      IntegrationType: AWS_PROXY",
        "      ApiId: !Ref PublicApi\n      IntegrationType: HTTP_PROXY", 1,
    )
    assert broken != template
    (tmp_path / "template.yaml").write_text(broken)

    result = subprocess.run(
        [sys.executable, "-m", "wsstack.cli", "up", "-t", str(tmp_path / "template.yaml"), "--port", "0",
         "--tls-port", "0", "--emulator-port", "0", "--state-file", str(tmp_path / "state.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "wsstack: WhoAmIRoute (route 'whoami') uses integration WhoAmIIntegration of type HTTP_PROXY, which the "
        "local stack cannot run; make it IntegrationType: AWS_PROXY with a Lambda function of this template."
    )


@pytest.mark.parametrize("command", ["up", "invoke"])
def test_help_explains_every_option(command):
    # A wide terminal, so that argparse does not wrap a help text across the checked words.
    result = subprocess.run([sys.executable, "-m", "wsstack.cli", command, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})

    assert result.returncode == 0
    assert "--log-format {text,json}" in result.stdout
    assert "examples:" in result.stdout
    if command == "up":
        for flag, aws in [("--idle-timeout", "600"), ("--max-connection-duration", "7200"),
                          ("--integration-timeout", "29"), ("--max-frame-bytes", "32768"),
                          ("--max-message-bytes", "131072")]:
            assert flag in result.stdout and f"(AWS: {aws})" in result.stdout
        for flag in ("--data-dir DIR", "--no-persist", "--fresh", "--state-file FILE"):
            assert flag in result.stdout


@pytest.mark.parametrize("option", ["--emulator-port", "--port", "--tls-port"])
def test_a_port_in_use_is_a_one_line_error_naming_the_option_to_change(tmp_path, option):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {"--port": "0", "--tls-port": "0", "--emulator-port": "0"}
        ports[option] = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "wsstack.cli", "up", "--state-file", str(tmp_path / "stack.json"),
             *(part for pair in ports.items() for part in pair)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 2
    assert f"{option} 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "stack.json").exists()


def test_up_brings_a_templates_aws_hosts_home_for_its_functions(tmp_path):
    # The form from the field: API_ENDPOINT !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com
    # with the stage appended in code, and a custom domain; `up` runs its own event loop (uvloop).
    from websockets.sync.client import connect

    state_file = tmp_path / "stack.json"
    proc = start_stack(state_file, "--template", str(FIXTURES / "aws_endpoint_forms" / "template.yaml"))
    try:
        state = json.loads(state_file.read_text())
        urls = {a["api"]: a["websocket_url"] for a in state["apis"]}
        for api in ("WithoutStageApi", "DomainApi"):
            with connect(urls[api], open_timeout=10) as ws:
                ws.send(json.dumps({"text": api}))
                assert json.loads(ws.recv(timeout=10)) == {"text": api}
    finally:
        assert proc.stop() == 0
