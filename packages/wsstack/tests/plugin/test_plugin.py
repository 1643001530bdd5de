"""The plugin's own behaviour, seen from a small test suite that pytester runs: the ini options
reach the stack, a marker gives tests a stack of other options, and a failing test's report
carries what the stack logged while it ran."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e

PUBLIC_CHAT = Path(__file__).resolve().parents[1] / "fixtures" / "public_chat"

INNER_TESTS = '''
import json

import pytest


def test_ini_parameters_reach_the_template(wsstack):
    assert wsstack.resources["ConnectionsTable"] == "ini_connections"


@pytest.mark.wsstack(parameters={"TableName": "marked_connections"})
def test_a_marker_gives_a_stack_of_its_options(wsstack):
    assert wsstack.resources["ConnectionsTable"] == "marked_connections"


def test_tests_of_the_same_options_share_one_stack(wsstack, wsstack_stacks, pytestconfig):
    from wsstack.pytest_plugin import stack_config

    assert wsstack_stacks.get(stack_config(pytestconfig)) is wsstack
    assert len(wsstack_stacks.running) == 2


def test_fails_after_a_broadcast(wsstack):
    with wsstack.connect() as client:
        client.send(json.dumps({"action": "sendmessage", "data": "before the failure"}))
        assert client.recv(timeout=10) == "before the failure"
    # The gateway logs the route once the function has returned, which may be after the
    # broadcast arrived: wait for that line, so that the report is sure to show it.
    wsstack.process.expect(lambda line: "routeKey=sendmessage" in line, 10, "no sendmessage line")
    assert False, "this test fails on purpose"
'''


@pytest.fixture
def inner_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(PUBLIC_CHAT, pytester.path / "app")
    pytester.makeini(
        """
        [pytest]
        wsstack_template = app/template.yaml
        wsstack_parameters =
            TableName=ini_connections
        wsstack_args = --log-level DEBUG
        """
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


def test_ini_options_and_markers_configure_the_stacks_and_failures_carry_the_stack_log(
    inner_suite: pytest.Pytester,
) -> None:
    result = inner_suite.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)

    result.assert_outcomes(passed=3, failed=1)
    # The failing test's report has a section of the stack's log, from while it ran: the
    # sendmessage route it used, and nothing of the start-up before it.
    output = result.stdout.str()
    section = output.split("Captured wsstack log call (app/template.yaml)", 1)[1]
    section = section.split("short test summary info", 1)[0]
    assert "routeKey=sendmessage" in section
    assert "wsstack: ready" not in section
    # Only the failing test's report carries one.
    assert output.count("Captured wsstack log call") == 1


def test_no_log_option_leaves_failing_reports_as_they_are(inner_suite: pytest.Pytester) -> None:
    result = inner_suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--wsstack-no-log", "-k", "fails_after", timeout=240
    )

    result.assert_outcomes(failed=1)
    assert "Captured wsstack log" not in result.stdout.str()


def test_a_template_that_does_not_exist_fails_the_tests_with_the_option_to_fix(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwsstack_template = nowhere/template.yaml\n")
    pytester.makepyfile(
        test_inner="def test_one(wsstack):\n    pass\n\ndef test_two(wsstack):\n    pass\n"
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)

    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*nowhere/template.yaml does not exist; set wsstack_template in the ini file*"])


CONFIG_TESTS = '''
from pathlib import Path

import pytest

from wsstack.pytest_plugin import stack_config


def test_ini(request):
    config = stack_config(request.config, request.node)
    assert config.template == request.config.rootpath / "app" / "template.yaml"
    assert config.parameters == (("Stage", "dev"), ("TableName", "ini_table"))
    assert config.env_vars == request.config.rootpath / "env.json"
    assert config.users is None
    assert config.args == ("--idle-timeout", "5")
    assert config.ready_timeout == 30


@pytest.mark.wsstack(template="other/template.yaml", parameters={"TableName": "marked"}, users="users.json")
def test_marked(request):
    config = stack_config(request.config, request.node)
    assert config.template == request.config.rootpath / "other" / "template.yaml"
    assert config.parameters == (("Stage", "dev"), ("TableName", "marked"))
    assert config.users == request.config.rootpath / "users.json"
    assert config.argv()[:2] == ["--template", str(config.template)]


@pytest.mark.wsstack(tempalte="typo.yaml")
def test_misspelt(request):
    stack_config(request.config, request.node)
'''


def test_ini_options_and_a_marker_make_the_stacks_configuration(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        wsstack_template = app/template.yaml
        wsstack_parameters =
            TableName=ini_table
            Stage=dev
        wsstack_env_vars = env.json
        wsstack_args = --idle-timeout 5
        wsstack_ready_timeout = 30
        """
    )
    pytester.makepyfile(test_config=CONFIG_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*pytest.mark.wsstack takes template=, parameters=, env_vars=, users= and args= "
                                 "only (got tempalte)*"])


def test_a_parameter_line_without_a_value_is_a_usage_error_naming_the_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwsstack_parameters = TableName\n")
    pytester.makepyfile(test_inner="def test_one(wsstack):\n    pass\n")

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*wsstack_parameters: 'TableName' must look like Name=Value.*"])
