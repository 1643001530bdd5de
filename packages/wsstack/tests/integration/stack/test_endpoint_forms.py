"""Templates written for AWS reach @connections locally by every URL they would use on AWS.

The fixture ``aws_endpoint_forms`` has one echo app per form (see its ``src/echo.py``): each
posts the message back through ``@connections`` at the endpoint its code or template builds,
which names AWS hosts; the stack's egress proxy brings those home over TLS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wsstack.stack import LocalStack
from wsstack.testing import BOUND, RunningStack, run_stack
from wsstack.tls import LocalCertificate

from .conftest import FIXTURES

TEMPLATE = FIXTURES / "aws_endpoint_forms" / "template.yaml"


@pytest.fixture(scope="module")
def forms() -> Iterator[RunningStack]:
    with run_stack(TEMPLATE, code_check_interval=None) as stack:
        yield stack


async def _echo(url: str, text: str) -> str:
    async with connect(url, open_timeout=BOUND) as ws:
        await ws.send(json.dumps({"text": text}))
        return str(await asyncio.wait_for(ws.recv(), BOUND))


@pytest.mark.parametrize(
    ("api", "stage"),
    [
        ("WithStageApi", "dev"),  # CALLBACK_URL: https://<api id>.execute-api.<region>.amazonaws.com/<stage>
        ("WithoutStageApi", "dev"),  # API_ENDPOINT without the stage; the code appends it
        ("AssembledApi", "dev"),  # built in code from API_ID and AWS_REGION, the stage from the event
        ("AssembledApi", "prod"),  # ... the same API's other stage reaches its own gateway
        ("FromEventApi", "dev"),  # https://{domainName}/{stage} from the event
        ("DomainApi", "dev"),  # a custom domain with an ApiMapping key
    ],
)
def test_each_endpoint_form_of_a_template_written_for_aws_echoes_back(forms, api, stage):
    text = f"hello {api} {stage}"

    echoed = asyncio.run(_echo(forms.url(api, stage), text))

    assert json.loads(echoed) == {"text": text}


def test_workers_go_through_the_stacks_proxy_and_trust_its_certificate(forms):
    env = forms.stack.runtime._pools["AssembledFunction"].env
    assert env["HTTPS_PROXY"] == env["https_proxy"] == forms.stack.egress.url
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1,localhost,::1"
    assert env["AWS_CA_BUNDLE"] == forms.info.ca_bundle


def test_a_host_outside_the_templates_apis_is_reached_where_it_points(forms, tmp_path):
    # A TLS server of this test on 127.0.0.2 (loopback, but not in the workers' NO_PROXY, so
    # the request goes through the stack's proxy), which answers who it is.
    certificate = LocalCertificate.create(tmp_path, ["127.0.0.2"])

    async def scenario() -> str:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            body = b"the test's own server"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.2", 0, ssl=certificate.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            async with connect(forms.url("FetchApi"), open_timeout=BOUND) as ws:
                await ws.send(json.dumps({"url": f"https://127.0.0.2:{port}/"}))
                return str(await asyncio.wait_for(ws.recv(), BOUND))
        finally:
            server.close()

    direct = forms.stack.egress.tunnels["direct"]

    assert asyncio.run(scenario()) == "the test's own server"
    assert forms.stack.egress.tunnels["direct"] == direct + 1


def test_the_certificate_names_each_apis_aws_host_and_the_custom_domain(forms):
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(Path(forms.info.ca_bundle).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    hosts = {f"{a.api_id}.execute-api.{forms.info.region}.amazonaws.com" for a in forms.info.apis}
    assert hosts | {"chat.example.com"} <= set(names)
    assert ssl.create_default_context(cafile=forms.info.ca_bundle)  # a usable bundle


def test_a_websocket_client_through_the_proxy_reaches_an_api_by_its_aws_url(forms):
    # wss://<api id>.execute-api.<region>.amazonaws.com/<stage>, as a function that is itself a
    # WebSocket client of the API would open it (websockets honours HTTPS_PROXY the same way).
    served = next(a for a in forms.info.apis if a.api == "AssembledApi" and a.stage == "prod")
    url = f"wss://{served.api_id}.execute-api.{forms.info.region}.amazonaws.com/prod"
    tls = ssl.create_default_context(cafile=forms.info.ca_bundle)

    async def scenario() -> str:
        async with connect(url, proxy=forms.stack.egress.url, ssl=tls, open_timeout=BOUND) as ws:
            await ws.send(json.dumps({"text": "through the proxy"}))
            return str(await asyncio.wait_for(ws.recv(), BOUND))

    assert json.loads(asyncio.run(scenario())) == {"text": "through the proxy"}


async def registered(gateway) -> str:
    """The id of the one connection the gateway holds. The client may see the 101 before the
    gateway's loop, in another thread, has recorded the connection; nothing signals that, so
    this looks again, every 10 ms, for at most BOUND seconds."""
    deadline = asyncio.get_running_loop().time() + BOUND
    while not (ids := list(gateway.registry._connections)):
        assert asyncio.get_running_loop().time() < deadline, "the gateway never recorded the connection"
        await asyncio.sleep(0.01)
    [connection_id] = ids
    return connection_id


def test_a_function_invoked_beside_a_running_stack_reaches_it_by_the_aws_host_too(forms):
    # `wsstack invoke` attached to a running stack: its own workers get their own proxy, which
    # answers the running stack's API hosts with that stack's certificate.
    served = next(a for a in forms.info.apis if a.api == "WithoutStageApi")
    gateway = next(g for g in forms.stack.gateways if g.secure_url == served.secure_websocket_url)

    async def scenario() -> str:
        async with connect(served.websocket_url, open_timeout=BOUND) as ws:
            connection_id = await registered(gateway)
            event = {"requestContext": {"routeKey": "$default", "eventType": "MESSAGE", "stage": "dev",
                                        "connectionId": connection_id}, "body": "from beside", "isBase64Encoded": False}
            attached = LocalStack(TEMPLATE, running=forms.info, code_check_interval=None)
            await attached.start()
            try:
                result = await attached.runtime.invoke("WithoutStageFunction", event)
                assert result.ok, result.error
            finally:
                await attached.stop()
            return str(await asyncio.wait_for(ws.recv(), BOUND))

    assert asyncio.run(scenario()) == "from beside"
