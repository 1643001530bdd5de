"""`wsstack up --site DIR`: the folder's files over HTTP, and the running stack's facts at /wsstack.json."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import StackProcess, start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackProcess, dict[str, object]]]:
    """A stack serving a small folder: an index page, a module, a subfolder without an index."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "index.html").write_text("<!doctype html><title>home</title>")
    (folder / "app.js").write_text("export const answer = 42;\n")
    (folder / "style.css").write_text("body { color: black; }\n")
    (folder / "empty").mkdir()
    # Beside the folder, not in it: what a traversal would reach for.
    (folder.parent / "secret.txt").write_text("not to be served")
    state_file = tmp_path_factory.mktemp("stack") / "stack.json"
    stack = start_stack(state_file, "--no-persist", "--site", str(folder), "--site-port", "0")
    try:
        yield stack, json.loads(state_file.read_text())
    finally:
        stack.stop()


def get(state: dict[str, object], path: str, method: str = "GET") -> tuple[int, str, bytes]:
    """Send ``path`` exactly as given (no client-side normalising of ``..``)."""
    parts = urlsplit(str(state["site_url"]))
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_the_banner_and_the_state_file_name_the_site(site) -> None:
    stack, state = site
    assert str(state["site_url"]).startswith("http://127.0.0.1:")
    assert any(line.strip().startswith("Site") and str(state["site_url"]) in line for line in stack.output)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ],
)
def test_files_come_with_the_type_a_browser_needs(site, path: str, content_type: str) -> None:
    status, served_type, body = get(site[1], path)
    assert (status, served_type) == (200, content_type)
    assert body


def test_wsstack_json_is_the_running_stacks_state(site) -> None:
    _stack, state = site
    status, content_type, body = get(state, "/wsstack.json")
    assert (status, content_type) == (200, "application/json")
    served = json.loads(body)
    for key in ("websocket_url", "aws_endpoint", "region", "user_pool_id", "user_pool_client_id", "site_url"):
        assert served[key] == state[key]


@pytest.mark.parametrize("path", ["/missing.js", "/empty/", "/empty"])
def test_missing_files_and_folders_without_an_index_are_404(site, path: str) -> None:
    assert get(site[1], path)[0] == 404


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/empty/../../secret.txt", "/..%2fsecret.txt"]
)
def test_nothing_outside_the_folder_is_served(site, path: str) -> None:
    status, _type, body = get(site[1], path)
    assert status == 404
    assert b"not to be served" not in body


def test_only_reads_are_answered(site) -> None:
    assert get(site[1], "/index.html", method="POST")[0] == 405
    assert get(site[1], "/index.html", method="HEAD")[:2] == (200, "text/html; charset=utf-8")


def test_a_site_that_is_not_a_folder_is_refused_in_one_sentence(tmp_path: Path) -> None:
    stack = StackProcess(tmp_path / "stack.json", "--no-persist", "--site", str(tmp_path / "nowhere"))
    assert stack.proc.wait(timeout=30) == 2
    stack.wait_drained(10)
    assert "--site" in "".join(stack.output) and "is not a folder" in "".join(stack.output)


def test_the_emulator_answers_a_browsers_cross_origin_cognito_calls(site) -> None:
    # A page served by the site calls Cognito at the AWS endpoint, another origin: the browser
    # asks first (a preflight), and reads the answer only if the origin is allowed.
    _stack, state = site
    origin = str(state["site_url"]).rstrip("/")
    parts = urlsplit(str(state["aws_endpoint"]))
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("OPTIONS", "/", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-amz-target",
        })
        preflight = connection.getresponse()
        preflight.read()
        connection.request("POST", "/", body=json.dumps({
            "ClientId": state["user_pool_client_id"], "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "alice", "PASSWORD": "Passw0rd-demo"},
        }), headers={"Origin": origin, "Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"})
        answer = connection.getresponse()
        body = json.loads(answer.read())
    finally:
        connection.close()
    assert preflight.status == 200
    assert preflight.getheader("Access-Control-Allow-Origin") == origin
    assert "x-amz-target" in preflight.getheader("Access-Control-Allow-Headers", "").lower()
    assert answer.status == 200 and answer.getheader("Access-Control-Allow-Origin") == origin
    assert body["AuthenticationResult"]["IdToken"]

