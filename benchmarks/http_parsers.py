"""CPU per Runtime API exchange: the hand-written server (``wsstack.http11``) against h11.

The Runtime API is on every invocation's path twice (``GET /next`` answered with the event,
``POST /response`` answered with 202), so its HTTP code's CPU is paid per message. This
feeds both the bytes awslambdaric's client sends and serializes the answers the runtime gives,
with no sockets, and prints microseconds per exchange for each. It asserts nothing.

    .venv/bin/python benchmarks/http_parsers.py [--exchanges N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from wsstack.http11 import Request, Response, ServerProtocol

__all__ = ["main"]

EVENT = b'{"requestContext": {"routeKey": "$default", "connectionId": "abc="}, "body": "' + b"x" * 200 + b'"}'
NEXT = (b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
        b"User-Agent: aws-lambda-python/3.13.0-4.2.0\r\nAccept: */*\r\n\r\n")
RESULT = b'{"statusCode": 200}'
RESPONSE = (b"POST /2018-06-01/runtime/invocation/0f2c/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
            b"User-Agent: aws-lambda-python/3.13.0-4.2.0\r\nAccept: */*\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(RESULT)).encode() + b"\r\n\r\n" + RESULT)
NEXT_HEADERS = {
    "Content-Type": "application/json",
    "Lambda-Runtime-Aws-Request-Id": "0f2c",
    "Lambda-Runtime-Deadline-Ms": "1700000000000",
    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:echo",
    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
}
ACCEPTED = (b'{"status": "OK"}', {"Content-Type": "application/json; charset=utf-8"})


class _Transport:
    """Enough of a transport for the protocol: it counts what is written."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 9001) if name == "sockname" else None

    def close(self) -> None:
        pass


def _answer(request: Request) -> Response:
    if request.method == "GET":
        return Response(200, EVENT, NEXT_HEADERS)
    return Response(202, *ACCEPTED)


def hand_written(exchanges: int) -> float:
    """Seconds of CPU for ``exchanges`` (next + response) through wsstack.http11."""
    protocol = ServerProtocol(_answer, max_body=1 << 20)
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    started = time.process_time()
    for _ in range(exchanges):
        protocol.data_received(NEXT)
        protocol.data_received(RESPONSE)
    return time.process_time() - started


def with_h11(exchanges: int) -> float:
    """The same through h11: parse each request, answer it, start the next cycle."""
    import h11

    connection = h11.Connection(h11.SERVER)
    transport = _Transport()
    started = time.process_time()
    for _ in range(exchanges):
        for data in (NEXT, RESPONSE):
            connection.receive_data(data)
            request = connection.next_event()
            body = b""
            while True:
                event = connection.next_event()
                if isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            answer = _answer(Request(request.method.decode(), request.target.decode(),
                                     {k.decode(): v.decode() for k, v in request.headers}, body, 9001))
            headers = [*answer.headers.items(), ("Content-Length", str(len(answer.body)))]
            transport.write(connection.send(h11.Response(status_code=answer.status, headers=headers)))
            transport.write(connection.send(h11.Data(data=answer.body)))
            transport.write(connection.send(h11.EndOfMessage()))
            connection.start_next_cycle()
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    asyncio.set_event_loop(asyncio.new_event_loop())
    ours = statistics.median(hand_written(args.exchanges) for _ in range(args.rounds))
    print(f"wsstack.http11: {ours / args.exchanges * 1e6:.1f} us per exchange (GET /next + POST /response)")
    try:
        import h11
    except ImportError:
        print("h11: not installed (pip install h11 to compare)")
        return 0
    theirs = statistics.median(with_h11(args.exchanges) for _ in range(args.rounds))
    print(f"h11 {h11.__version__}: {theirs / args.exchanges * 1e6:.1f} us per exchange ({theirs / ours:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
