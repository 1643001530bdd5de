"""Calls that wait for an answer, keep-alive pings, and what the client does with odd frames."""

from __future__ import annotations

import asyncio

import pytest

from chatclient import (
    Backoff,
    ClientClosed,
    ConnectionLost,
    NotConnected,
    RequestFailed,
    ServerError,
    UserSummary,
)

from .conftest import BOB, WAIT


def test_find_users_returns_the_users_frame(chat_server, new_client):
    async def scenario() -> list[UserSummary]:
        async with chat_server() as server, new_client(server) as client:
            return await client.find_users("bo", timeout=WAIT)

    assert asyncio.run(scenario()) == [UserSummary(BOB, "Bob", "bob")]


def test_an_error_frame_fails_the_call_it_answers(chat_server, new_client):
    async def scenario() -> RequestFailed:
        async with chat_server() as server, new_client(server) as client:
            with pytest.raises(RequestFailed) as failed:
                await client.list_conversations(timeout=WAIT)
            return failed.value

    assert asyncio.run(scenario()).code == "VALIDATION_ERROR"


def test_an_error_naming_a_message_fails_the_call_about_it_not_an_older_call(chat_server, new_client):
    async def scenario() -> None:
        async with chat_server() as server, new_client(server) as client:
            server.silent_actions.add("findUsers")
            server.answers["markRead"] = {"type": "error", "code": "FORBIDDEN", "messageId": "m-7",
                                          "message": "Only the recipient may mark a message read."}
            await client.wait_online(WAIT)
            older = asyncio.create_task(client.find_users("bo", timeout=WAIT))
            await server.wait_for(lambda: bool(server.sent("findUsers")))
            with pytest.raises(RequestFailed) as refused:
                await client.mark_read("dm_a_b", message_ids=["m-7"], timeout=WAIT)
            assert (refused.value.code, refused.value.message_id) == ("FORBIDDEN", "m-7")
            assert not older.done()
            older.cancel()

    asyncio.run(scenario())


def test_a_call_in_flight_fails_with_connection_lost_when_the_socket_drops(chat_server, new_client):
    async def scenario() -> None:
        async with chat_server() as server, new_client(server) as client:
            server.silent_actions.add("findUsers")
            await client.wait_online(WAIT)
            call = asyncio.create_task(client.find_users("bo", timeout=WAIT))
            await server.wait_for(lambda: bool(server.sent("findUsers")))
            server.kill_connections()
            with pytest.raises(ConnectionLost):
                await call

    asyncio.run(scenario())


def test_a_call_while_the_server_is_unreachable_gives_up_after_its_timeout(chat_server, new_client):
    async def scenario() -> None:
        async with chat_server() as server:
            server.refuse_handshakes = 1_000_000
            # Real (short) sleeps here, so refusals do not spin.
            async with new_client(server, backoff=Backoff(base=0.01, max_delay=0.05), sleep=asyncio.sleep) as client:
                with pytest.raises(NotConnected):
                    await client.find_users("bo", timeout=0.2)

    asyncio.run(scenario())


def test_close_fails_pending_calls_and_ends_the_event_stream(chat_server, new_client):
    async def scenario() -> None:
        async with chat_server() as server:
            server.silent_actions.add("findUsers")
            client = new_client(server)
            events = client.events()
            await client.start()
            await client.wait_online(WAIT)
            call = asyncio.create_task(client.find_users("bo", timeout=WAIT))
            await server.wait_for(lambda: bool(server.sent("findUsers")))
            await client.close()
            with pytest.raises(ClientClosed):
                await call
            async with asyncio.timeout(WAIT):
                assert [e async for e in events][-1].state.value == "closed"
            # The server saw a clean close, not a dropped connection.
            await server.wait_for(lambda: not server.connections)
            with pytest.raises(ClientClosed):
                await client.send_message(BOB, "too late")

    asyncio.run(scenario())


def test_keepalive_pings_after_a_quiet_interval(chat_server, new_client):
    async def scenario() -> None:
        async with chat_server() as server, new_client(server, keepalive_interval=0.05) as client:
            await client.wait_online(WAIT)
            await server.wait_for(lambda: len(server.sent("ping")) >= 2)

    asyncio.run(scenario())


def test_keepalive_answer_from_a_server_without_ping_is_not_taken_for_another_calls_error(chat_server, new_client):
    async def scenario() -> list[UserSummary]:
        async with chat_server() as server:
            server.silent_actions.add("ping")
            async with new_client(server, keepalive_interval=0.05, request_timeout=WAIT) as client:
                await client.wait_online(WAIT)
                await server.wait_for(lambda: len(server.sent("ping")) >= 1)
                return await client.find_users("bo", timeout=WAIT)

    assert len(asyncio.run(scenario())) == 1


def test_api_gateway_error_frames_are_reported_as_internal(chat_server, new_client):
    async def scenario() -> list[ServerError]:
        async with chat_server() as server:
            client = new_client(server)
            events = client.events()
            async with client:
                await client.wait_online(WAIT)
                await server.push({"neither": "typed nor a gateway frame"})
                await server.push({"message": "Internal server error", "connectionId": "c", "requestId": "r"})
                async with asyncio.timeout(WAIT):
                    async for event in events:
                        if isinstance(event, ServerError):
                            return [event]
            return []

    assert asyncio.run(scenario()) == [ServerError("INTERNAL", "Internal server error", None)]
