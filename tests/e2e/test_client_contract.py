"""Frames the live stack sends match docs/asyncapi.yaml (the actions served today)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chatclient import ChatSession, conversation_id

from .conftest import ROOT

pytestmark = pytest.mark.e2e
jsonschema = pytest.importorskip("jsonschema")

SPEC = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))


def assert_documented(frame: dict[str, Any]) -> None:
    """``frame`` validates against the payload schema of the message named by its type."""
    message = SPEC["components"]["messages"][frame["type"]]
    schema = {"$ref": message["payload"]["$ref"], "components": SPEC["components"]}
    jsonschema.Draft7Validator(schema).validate(frame)


def test_ack_message_status_sync_and_error_frames_match_the_document(stack, new_user):
    alice, bob = new_user("alice"), new_user("bob")
    conversation = conversation_id(alice.sub, bob.sub)
    with ChatSession(stack.target, alice.id_token) as a:
        waiting = a.send_message(conversation, bob.sub, "while you were away")
        assert_documented(a.receive_until("ack"))

        with ChatSession(stack.target, bob.id_token) as b:
            b.send("syncMessages", limit=10)
            sync = b.receive_until("sync")
            assert [m["messageId"] for m in sync["messages"]] == [waiting]
            assert_documented(sync)
            assert_documented(a.receive_until("status"))

            live = a.send_message(conversation, bob.sub, "live one", replyToMessageId=waiting)
            pushed = b.receive_until("message")
            assert pushed["message"]["messageId"] == live
            assert_documented(pushed)

            a.send_message(conversation, bob.sub, "")
            error = a.receive_until("error")
            assert error["code"] == "VALIDATION_ERROR"
            assert_documented(error)

