"""Local API Gateway WebSocket API: route selection, events, limits and ``@connections``.

:mod:`wsstack.gateway.core` holds the AWS behaviour without I/O;
:class:`~wsstack.gateway.server.Gateway` serves it over real sockets.
"""

from wsstack.gateway.core import Connection, ConnectionRegistry, Limits, StageContext
from wsstack.gateway.server import Gateway, Invoke

__all__ = ["Connection", "ConnectionRegistry", "Gateway", "Invoke", "Limits", "StageContext"]
