"""The client names each call with a requestId and takes the answer that echoes it; history pages."""

from __future__ import annotations

import asyncio

import pytest

from chatclient import HistoryPage, RequestFailed

from .conftest import BOB, WAIT, wire_message


def _users(name: str, request_id: str) -> dict:
    return {"type": "users", "users": [{"userId": BOB, "name": name, "username": name.lower()}],
            "requestId": request_id}


def test_answers_of_the_same_type_go_to_the_call_whose_request_id_they_echo(chat_server, new_client):
    async def scenario() -> tuple[str, str]:
        async with chat_server() as server:
            server.silent_actions = {"findUsers"}
            async with new_client(server) as client:
                await client.wait_online(WAIT)
                first = asyncio.create_task(client.find_users("al", timeout=WAIT))
                second = asyncio.create_task(client.find_users("bo", timeout=WAIT))
                await server.wait_for(lambda: len(server.sent("findUsers")) == 2)
                by_query = {f["query"]: f["requestId"] for f in server.sent("findUsers")}
                # GIVEN the server finishes the second request first
                await server.push(_users("Bob", by_query["bo"]))
                await server.push(_users("Alice", by_query["al"]))
                return (await first)[0].name, (await second)[0].name

    # THEN each call gets its own answer, not the first of its type
    assert asyncio.run(scenario()) == ("Alice", "Bob")


def test_an_error_goes_to_the_call_it_names_and_the_others_keep_waiting(chat_server, new_client):
    async def scenario() -> tuple[str, int]:
        async with chat_server() as server:
            server.silent_actions = {"findUsers", "listConversations"}
            async with new_client(server) as client:
                await client.wait_online(WAIT)
                listing = asyncio.create_task(client.list_conversations(timeout=WAIT))
                await server.wait_for(lambda: len(server.sent("listConversations")) == 1)
                finding = asyncio.create_task(client.find_users("x", timeout=WAIT))
                await server.wait_for(lambda: len(server.sent("findUsers")) == 1)
                # An error naming a request nobody waits for any more is nobody's answer.
                await server.push({"type": "error", "code": "INTERNAL", "message": "late", "requestId": "gone"})
                await server.push({"type": "error", "code": "RATE_LIMITED", "message": "slow down",
                                   "requestId": server.sent("findUsers")[0]["requestId"]})
                with pytest.raises(RequestFailed) as refused:
                    await finding
                assert not listing.done()
                await server.push({"type": "conversations", "conversations": [], "cursor": None, "hasMore": False,
                                   "requestId": server.sent("listConversations")[0]["requestId"]})
                page = await listing
                return refused.value.code, len(page.conversations)

    assert asyncio.run(scenario()) == ("RATE_LIMITED", 0)


@pytest.mark.parametrize("echo", [True, False], ids=["echoing server", "server without request ids"])
def test_history_pages_newest_first_with_the_cursor(chat_server, new_client, echo):
    async def scenario() -> list[HistoryPage]:
        async with chat_server() as server:
            server.echo_request_ids = echo
            server.history = [wire_message(f"m-{n}") for n in (4, 3, 2, 1, 0)]
            async with new_client(server) as client:
                await client.wait_online(WAIT)
                pages = [await client.history(f"dm_a_{BOB}", limit=2, timeout=WAIT)]
                while pages[-1].has_more:
                    pages.append(await client.history(f"dm_a_{BOB}", pages[-1].cursor, 2, timeout=WAIT))
                    assert len(pages) <= 3
                return pages

    pages = asyncio.run(scenario())
    assert [[m.message_id for m in p.messages] for p in pages] == [["m-4", "m-3"], ["m-2", "m-1"], ["m-0"]]
    assert [p.has_more for p in pages] == [True, True, False]
    assert pages[-1].cursor is None and pages[0].conversation_id == f"dm_a_{BOB}"


def test_history_is_a_read_and_reports_no_received_messages(chat_server, new_client):
    async def scenario() -> list:
        async with chat_server() as server:
            server.echo_request_ids = True
            server.history = [wire_message("m-1")]
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                await client.history(f"dm_a_{BOB}", timeout=WAIT)
            return [type(e).__name__ async for e in events]

    assert "MessageReceived" not in asyncio.run(scenario())
