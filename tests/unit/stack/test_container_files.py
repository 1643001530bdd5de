"""The Dockerfile and docker-compose.yml agree with the stack they run (no Docker engine needed).

What the files say is checked here; tests/e2e/test_container.py runs the image's command line.
"""

from __future__ import annotations

import re

from container_files import ROOT, compose, exec_form, healthcheck_command, stages

from wsstack.cli import build_parser
from wsstack.template import load_yaml


def up_args(argv: list[str]):
    assert argv[:2] == ["wsstack", "up"], argv
    return build_parser().parse_args(argv[1:])


def test_the_stack_image_is_slim_official_python_of_the_templates_runtime():
    runtime = load_yaml(ROOT / "template.yaml")["Globals"]["Function"]["Runtime"]  # python3.13

    base = stages()["stack"].base

    assert re.fullmatch(r"python:3\.\d+-slim", base), base
    assert base == f"python:{runtime.removeprefix('python')}-slim"


def test_the_stack_runs_as_a_user_other_than_root():
    user = stages()["stack"].last("USER").split(":")[0]

    assert user not in ("", "0", "root")
    # The tools stage installs as root, then drops back to the same user.
    assert stages()["tools"].last("USER") == stages()["stack"].last("USER")


def test_the_command_serves_every_interface_on_the_exposed_and_published_ports():
    stack = stages()["stack"]
    args = up_args(exec_form(stack.last("CMD")))
    exposed = {int(port) for value in stack.all("EXPOSE") for port in value.split()}
    published = {int(mapping.rsplit(":", 1)[1]) for mapping in compose()["services"]["stack"]["ports"]}

    assert args.host == "0.0.0.0"
    assert args.site == "web"  # the web chat, on its own port
    assert {args.port, args.tls_port, args.emulator_port, args.site_port} == exposed == published


def test_published_ports_stay_on_this_machine_unless_asked():
    for mapping in compose()["services"]["stack"]["ports"]:
        assert mapping.startswith("${WSSTACK_BIND:-127.0.0.1}:"), mapping


def test_the_state_file_lives_on_the_volume_the_seed_reads_and_the_health_check_names():
    stack = stages()["stack"]
    args = up_args(exec_form(stack.last("CMD")))
    services = compose()["services"]
    state_dir = f"{stack.last('WORKDIR')}/{args.state_file.rsplit('/', 1)[0]}"  # /app/.local

    assert f"local:{state_dir}" in services["stack"]["volumes"]
    assert f"local:{state_dir}:ro" in services["seed"]["volumes"]
    assert services["seed"]["command"][-2:] == ["--state-file", args.state_file]
    assert healthcheck_command(stack) == ["python", "-m", "wsstack.health", "--state-file", args.state_file]


def test_the_seed_waits_for_a_healthy_stack_and_shares_its_network():
    seed = compose()["services"]["seed"]

    assert seed["network_mode"] == "service:stack"
    assert seed["depends_on"] == {"stack": {"condition": "service_healthy"}}


def test_the_localstack_tools_deploy_the_stack_the_suite_then_tests():
    services = compose()["services"]
    deploy, e2e = services["deploy"], services["e2e"]
    command = deploy["command"]

    assert command[command.index("--stack-name") + 1] == e2e["environment"]["CHAT_E2E_STACK_NAME"]
    assert e2e["depends_on"] == {"deploy": {"condition": "service_completed_successfully"}}
    assert {s for s, body in services.items() if "localstack" in body.get("profiles", [])} == {
        "localstack", "deploy", "e2e"
    }


def test_the_build_context_leaves_out_environments_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".git", ".venv", ".local", ".aws-sam"} <= set(ignored)
