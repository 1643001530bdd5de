"""Node.js functions: what the template must name, and the one sentence without node or its client."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wsstack.node import NodeUnavailable, find_node_runtime, node_ric_dir
from wsstack.runtime import LambdaRuntime, UnsupportedRuntime
from wsstack.template import TemplateError, load_app

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "node_websocket_api"


def variant(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "app")
    path = tmp_path / "app" / "template.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_node_functions_read_with_their_runtime_and_lambdas_handler_forms() -> None:
    functions = load_app(FIXTURE / "template.yaml").functions

    assert functions["ConnectFunction"].runtime == "nodejs20.x"  # connect.mjs, an ES module
    assert functions["EchoFunction"].handler == "handlers/echo.handler"  # a folder, then file.export
    assert functions["InfoFunction"].runtime == "nodejs22.x"


@pytest.mark.parametrize(
    ("old", "new", "sentence"),
    [
        ("Handler: handlers/echo.handler", "Handler: handlers/missing.handler",
         "EchoFunction: handler file handlers/missing.js (or .mjs, .cjs) not found under"),
        ("Handler: info.handler", "Handler: info", "InfoFunction: Handler must look like 'file.export'"),
        ("      Runtime: nodejs22.x", "      Runtime: java21",
         "InfoFunction: runtime 'java21' is not supported; use a python3.x runtime or nodejs20.x or nodejs22.x."),
    ],
)
def test_a_node_function_that_cannot_run_stops_start_up_in_one_sentence(
    tmp_path: Path, old: str, new: str, sentence: str
) -> None:
    with pytest.raises(TemplateError) as refused:
        load_app(variant(tmp_path, old, new))

    assert sentence in str(refused.value)


def test_without_node_on_path_a_node_function_is_refused_naming_what_to_install(monkeypatch, tmp_path) -> None:
    # GIVEN a PATH with no node on it
    monkeypatch.setenv("PATH", str(tmp_path))
    fn = load_app(FIXTURE / "template.yaml").functions["ConnectFunction"]

    # WHEN the runtime is asked whether it can run the function
    with pytest.raises(UnsupportedRuntime) as refused:
        LambdaRuntime().check_function(fn)

    # THEN one sentence says what to install
    assert str(refused.value) == (
        "ConnectFunction: runtime 'nodejs20.x' needs Node.js, and `node` is not on PATH; "
        "install Node.js 20 or later (and npm), or use a python3.x runtime."
    )


def test_with_node_but_no_client_the_sentence_names_the_npm_install(tmp_path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: the missing-client sentence needs node present")
    folder = tmp_path / "ric"

    with pytest.raises(NodeUnavailable) as refused:
        find_node_runtime(folder)

    message = str(refused.value)
    assert f"not installed in {folder.resolve()}" in message
    assert f"`npm install --prefix {folder.resolve()} aws-lambda-ric`" in message
    assert "--node-ric or WSSTACK_NODE_RIC" in message


def test_python_functions_need_no_node(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    fn = load_app(FIXTURE.parent / "sam_websocket_api" / "template.yaml").functions["EchoFunction"]

    assert LambdaRuntime().check_function(fn) is None


def test_the_client_folder_comes_from_the_option_then_the_variable_then_dot_local() -> None:
    assert node_ric_dir("given", {"WSSTACK_NODE_RIC": "env"}) == Path("given")
    assert node_ric_dir(None, {"WSSTACK_NODE_RIC": "env"}) == Path("env")
    assert node_ric_dir(None, {}) == Path(".local/node-ric")
