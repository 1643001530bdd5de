"""A small Python client for the chat backend: find a stack, sign in, talk over WebSocket."""

from chatclient.auth import Tokens, ensure_user, sign_in
from chatclient.session import ChatSession, conversation_id
from chatclient.target import Target

__all__ = ["ChatSession", "Target", "Tokens", "conversation_id", "ensure_user", "sign_in"]
