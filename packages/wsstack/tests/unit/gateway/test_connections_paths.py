"""``@connections`` request paths, percent-encoded or not, without sockets.

AWS's own SigV4 examples for the management API send ``/<stage>/%40connections/<id>`` with
the id's ``=`` as ``%3D``; boto3 sends ``@`` as it is and encodes the id. API Gateway decodes
the path once before matching it, so every spelling reaches the same connection.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsstack.gateway.core import Connection
from wsstack.gateway.management import ManagementApi
from wsstack.http11 import Request, Response

KNOWN_ID = "L0SM9cOFvHcCIhw="
CONNECTION = Connection(connection_id=KNOWN_ID, connected_at=1_700_000_000.0, source_ip="127.0.0.1")


class Manager:
    """One open connection, ``KNOWN_ID``; records what each operation was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def describe(self, connection_id: str) -> Connection | None:
        self.asked.append(("GET", connection_id))
        return CONNECTION if connection_id == KNOWN_ID else None

    async def post(self, connection_id: str, data: bytes) -> bool:
        self.asked.append(("POST", connection_id))
        return connection_id == KNOWN_ID

    async def delete(self, connection_id: str) -> bool:
        self.asked.append(("DELETE", connection_id))
        return connection_id == KNOWN_ID


def answer(api: ManagementApi, method: str, path: str, body: bytes = b"") -> Response:
    async def scenario() -> Response:
        result = api(Request(method, path, {}, body, 1))
        return await result if isinstance(result, asyncio.Future) else result

    return asyncio.run(scenario())


SPELLINGS = [
    "/dev/@connections/L0SM9cOFvHcCIhw=",          # curl, as typed
    "/dev/@connections/L0SM9cOFvHcCIhw%3D",        # boto3
    "/dev/%40connections/L0SM9cOFvHcCIhw%3D",      # AWS's signed-request examples
    "/dev/%40connections/L0SM9cOFvHcCIhw%3d",      # lower-case hex is the same octet
    "/%64ev/%40connections/%4C0SM9cOFvHcCIhw=",    # any octet may be encoded
]


@pytest.mark.parametrize("path", SPELLINGS)
@pytest.mark.parametrize(("method", "status"), [("POST", 200), ("GET", 200), ("DELETE", 204)])
def test_every_spelling_of_the_path_reaches_the_connection(path: str, method: str, status: int) -> None:
    manager = Manager()
    api = ManagementApi(manager, "dev", max_payload=1024)

    response = answer(api, method, path, b"hi" if method == "POST" else b"")

    assert response.status == status
    assert manager.asked == [(method, KNOWN_ID)]


def test_an_encoded_path_to_an_unknown_connection_is_gone() -> None:
    api = ManagementApi(Manager(), "dev", max_payload=1024)

    response = answer(api, "GET", "/dev/%40connections/AAAAAAAAAAAAAAA%3D")

    assert response.status == 410
    assert response.headers["x-amzn-ErrorType"] == "GoneException"


@pytest.mark.parametrize(
    "path",
    [
        "/dev/%2540connections/L0SM9cOFvHcCIhw%3D",   # decoded once only: "%40connections" is not the resource
        "/dev/%40connections/",                      # no id
        "/dev/%40connections/a%2Fb",                 # an encoded slash names no connection
        "/prod/%40connections/L0SM9cOFvHcCIhw%3D",   # another stage
    ],
)
def test_paths_that_name_no_connection_are_forbidden(path: str) -> None:
    manager = Manager()
    api = ManagementApi(manager, "dev", max_payload=1024)

    response = answer(api, "POST", path, b"x")

    assert (response.status, json.loads(response.body)) == (403, {"message": "Forbidden"})
    assert manager.asked == []


#: What a connection id could be made of, well beyond AWS's base64url alphabet.
IDS = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=24)


@settings(max_examples=200, deadline=None)
@given(connection_id=IDS, method=st.sampled_from(["POST", "GET", "DELETE"]), safe=st.sampled_from(["", "=", "@=", "@"]))
def test_any_percent_encoding_of_an_id_names_the_same_id(connection_id: str, method: str, safe: str) -> None:
    manager = Manager()
    api = ManagementApi(manager, "dev", max_payload=1024)
    path = f"/dev/{quote('@connections', safe=safe)}/{quote(connection_id, safe=safe)}"

    answer(api, method, path, b"x" if method == "POST" else b"")

    assert manager.asked == [(method, connection_id)]


@settings(max_examples=200, deadline=None)
@given(path=st.text(max_size=60))
def test_arbitrary_paths_get_an_aws_answer_never_a_crash(path: str) -> None:
    api = ManagementApi(Manager(), "dev", max_payload=1024)

    response = answer(api, "GET", "/" + path)

    assert response.status in (200, 403, 410)
