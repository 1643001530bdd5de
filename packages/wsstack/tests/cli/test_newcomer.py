"""The package README's quickstart, followed literally by someone who has never seen this
repository, in a new folder laid out as ``sam init`` lays out a Python WebSocket app.

The commands are read from the README, so this fails when the README drifts from what the
command does. The one change made to them: ``--port 0 --tls-port 0 --emulator-port 0`` is
appended where a command would take the default ports, so that the test runs beside anything.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wsstack.pytest_plugin import ChildProcess

pytestmark = pytest.mark.e2e

PACKAGE = Path(__file__).resolve().parents[2]
README = (PACKAGE / "README.md").read_text(encoding="utf-8")
#: Where the virtualenv's commands are (``wsstack``, ``websockets``), as the README's Install
#: section leaves them.
BIN = Path(sys.executable).parent
BOUND = 60.0
FREE_PORTS = ["--port", "0", "--tls-port", "0", "--emulator-port", "0"]

# ------------------------------------------------------------------ the newcomer's app

#: A WebSocket chat in the shape of AWS's samples: raw AWS::ApiGatewayV2 resources, Serverless
#: functions, a table of connection ids, a StageName parameter.
TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: my-chat, a WebSocket chat (sam init layout)

Parameters:
  StageName:
    Type: String
    Default: Prod

Globals:
  Function:
    Runtime: python3.13
    CodeUri: {code_uri}
    MemorySize: 128
    Timeout: 10
    Environment:
      Variables:
        TABLE_NAME: !Ref ConnectionsTable

Resources:
  ChatApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: my-chat
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action

  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref ChatApi
      RouteKey: $connect
      Target: !Sub integrations/${{ConnectIntegration}}
  ConnectIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref ChatApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub {uri_of[OnConnectFunction]}

  DisconnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref ChatApi
      RouteKey: $disconnect
      Target: !Sub integrations/${{DisconnectIntegration}}
  DisconnectIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref ChatApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub {uri_of[OnDisconnectFunction]}

  SendMessageRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref ChatApi
      RouteKey: sendmessage
      Target: !Sub integrations/${{SendMessageIntegration}}
  SendMessageIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref ChatApi
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub {uri_of[OnMessageFunction]}

  Deployment:
    Type: AWS::ApiGatewayV2::Deployment
    DependsOn: [ConnectRoute, DisconnectRoute, SendMessageRoute]
    Properties:
      ApiId: !Ref ChatApi
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref ChatApi
      StageName: !Ref StageName
      DeploymentId: !Ref Deployment

  ConnectionsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - AttributeName: connectionId
          AttributeType: S
      KeySchema:
        - AttributeName: connectionId
          KeyType: HASH

  OnConnectFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.on_connect
  OnDisconnectFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.on_disconnect
  OnMessageFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.on_message

Outputs:
  WebSocketURI:
    Value: !Sub wss://${{ChatApi}}.execute-api.${{AWS::Region}}.amazonaws.com/${{StageName}}
"""

#: The integration URI AWS's samples give each route (API Gateway's Lambda invocation path).
URI = "arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{{function}.Arn}}/invocations"


def template(code_uri: str) -> str:
    functions = ("OnConnectFunction", "OnDisconnectFunction", "OnMessageFunction")
    return TEMPLATE.format(code_uri=code_uri, uri_of={name: URI.format(function=name) for name in functions})


HANDLERS = '''\
import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def on_connect(event, context):
    table.put_item(Item={"connectionId": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}


def on_disconnect(event, context):
    table.delete_item(Key={"connectionId": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}


def on_message(event, context):
    request = event["requestContext"]
    management = boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"https://{request['domainName']}/{request['stage']}"
    )
    data = json.loads(event["body"])["data"]
    for item in table.scan()["Items"]:
        try:
            management.post_to_connection(ConnectionId=item["connectionId"], Data=data.encode())
        except management.exceptions.GoneException:
            table.delete_item(Key={"connectionId": item["connectionId"]})
    return {"statusCode": 200, "body": "Data sent."}
'''

#: A MESSAGE event as API Gateway sends it, as a sample's events/ folder holds it.
MESSAGE_EVENT = {
    "requestContext": {
        "routeKey": "sendmessage", "messageId": "Mx1f7cGBoAMCJhA=", "eventType": "MESSAGE",
        "extendedRequestId": "Mx1f7FdmoAMFeZA=", "requestTime": "01/Jan/2026:00:00:00 +0000",
        "messageDirection": "IN", "stage": "Prod", "connectedAt": 1767225600000,
        "requestTimeEpoch": 1767225600000, "identity": {"sourceIp": "192.0.2.1"},
        "requestId": "Mx1f7FdmoAMFeZA=", "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "connectionId": "Mx1f7cGBoAMCJhA=", "apiId": "abcdef1234",
    },
    "body": json.dumps({"action": "sendmessage", "data": "hello from events/message.json"}),
    "isBase64Encoded": False,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A new folder as ``sam init`` leaves it: template.yaml, src/, events/ (and infra/, for
    the README's example of a template elsewhere)."""
    root = tmp_path / "my-chat"
    (root / "src").mkdir(parents=True)
    (root / "events").mkdir()
    (root / "infra").mkdir()
    (root / "template.yaml").write_text(template("src/"))
    (root / "infra" / "template.yaml").write_text(template("../src/"))
    (root / "src" / "app.py").write_text(HANDLERS)
    (root / "src" / "requirements.txt").write_text("boto3\n")
    (root / "events" / "message.json").write_text(json.dumps(MESSAGE_EVENT, indent=2))
    return root


# ------------------------------------------------------------------ the README's commands


def section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def commands(title: str) -> list[str]:
    """The command lines of a section's ``sh`` blocks, comments left out."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section(title), flags=re.DOTALL):
        lines += [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]
    return lines


def argv(command: str) -> list[str]:
    """A README command line as it runs in the virtualenv the README's Install section made."""
    words = shlex.split(command)
    return [str(BIN / words[0]), *words[1:]]


def quickstart(starting: str, *, exact: bool = False) -> str:
    """The quickstart's one command line that starts so (or is exactly so)."""
    [line] = [line for line in commands("Quickstart on any SAM template")
              if line == starting or (not exact and line.startswith(starting))]
    return line


@pytest.fixture
def processes() -> Iterator[list[ChildProcess]]:
    started: list[ChildProcess] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
        process.proc.wait(timeout=BOUND)


def run(command: list[str], cwd: Path, processes: list[ChildProcess], **popen: object) -> ChildProcess:
    process = ChildProcess(command, cwd=cwd, **popen)
    processes.append(process)
    return process


def up(command: str, project: Path, processes: list[ChildProcess]) -> ChildProcess:
    words = argv(command)
    if not any(word in words for word in ("--port", "--tls-port", "--emulator-port")):
        words += FREE_PORTS
    stack = run(words, project, processes)
    stack.expect(lambda line: line.startswith("wsstack: ready"), BOUND, f"`{command}` did not become ready")
    return stack


def received(text: str) -> Callable[[str], bool]:
    """Matches the client's line for a message it received (it moves the cursor with ANSI
    escapes to print it above its prompt)."""
    return lambda line: re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).strip() == f"< {text}"


def ctrl_c(stack: ChildProcess) -> None:
    """Stop it as the README says (Ctrl-C) and check it stopped in order."""
    stack.proc.send_signal(signal.SIGINT)
    assert stack.proc.wait(timeout=BOUND) == 0, "".join(stack.output)
    stack.wait_drained(BOUND)
    printed = "".join(stack.output)
    assert "Traceback" not in printed and "ERROR" not in printed, printed


def test_the_quickstart_as_a_newcomer_follows_it(project, processes):
    # `wsstack up` in the folder: it serves the template, and says where
    stack = up(quickstart("wsstack up", exact=True), project, processes)
    state = json.loads((project / ".local" / "stack.json").read_text())
    url = state["websocket_url"]
    assert url.endswith("/Prod") and url in "".join(stack.output)

    # Connect with websockets' own client as the README shows (its URL has our port) and
    # send its message: the sample's broadcast echoes it back to us
    [shown] = re.findall(r"`websockets (ws://\S+)`", section("Quickstart on any SAM template"))
    assert shown == "ws://127.0.0.1:3001/Prod"  # the default port and this stage
    [message] = re.findall(r"send\s+`(\{.*?\})`", section("Quickstart on any SAM template"), flags=re.DOTALL)
    client = run(argv(f"websockets {url}"), project, processes, stdin=subprocess.PIPE)
    client.expect(lambda line: line.startswith("Connected to"), BOUND, "the client did not connect")
    assert client.proc.stdin is not None
    client.proc.stdin.write(message + "\n")
    client.proc.stdin.flush()
    sent = json.loads(message)["data"]
    client.expect(received(sent), BOUND, "the message did not come back")

    # Replay the sample event through the function with the README's invoke line: it runs in
    # the running stack, so our client gets the event's data too
    replay = subprocess.run(argv(quickstart("wsstack invoke")), cwd=project, capture_output=True, text=True,
                            timeout=BOUND)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout) == {"statusCode": 200, "body": "Data sent."}
    assert "using the running stack" in replay.stderr
    client.expect(received("hello from events/message.json"), BOUND, "the replayed event did not reach the client")

    # A second stack beside the first, with the README's line for it
    second = up(quickstart("wsstack up --port 0"), project, processes)
    ctrl_c(second)

    # Ctrl-C: the stack stops in order and forgets its state file
    client.proc.kill()
    ctrl_c(stack)
    assert not (project / ".local" / "stack.json").exists()

    # Another template, with a parameter
    other = up(quickstart("wsstack up -t"), project, processes)
    assert "/dev" in "".join(other.output)
    ctrl_c(other)


@pytest.mark.parametrize("command", ["up", "invoke"])
def test_help_works_and_its_examples_are_valid_commands(command):
    from wsstack.cli import build_parser

    helped = subprocess.run([str(BIN / "wsstack"), command, "--help"], capture_output=True, text=True,
                            timeout=BOUND)
    assert helped.returncode == 0, helped.stderr
    examples = helped.stdout.split("examples:\n", 1)[1].splitlines()
    assert examples
    for example in examples:
        words = shlex.split(example.split("#", 1)[0].split("<", 1)[0])
        assert words[:2] == ["wsstack", command]
        build_parser().parse_args(words[1:])  # exits (SystemExit) on an option that does not exist
