"""The egress proxy's decisions, without sockets: the CONNECT line, where a host goes, and
which local stage (and path) a request to a template API host reaches."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsstack.egress import (
    ApiMapping,
    ConnectError,
    Direct,
    EgressRoutes,
    LocalHost,
    ViaProxy,
    execute_api_host,
    host_header,
    local_hosts,
    parse_connect,
    proxy_environment,
)

API_HOST = "abc1234567.execute-api.us-east-1.amazonaws.com"
HOSTS = local_hosts(
    [("ChatApi", "abc1234567", "dev", 4001), ("ChatApi", "abc1234567", "prod", 4002)],
    [("chat.example.com", "ChatApi", "prod", "v1"), ("Chat.Example.org.", "ChatApi", "dev", "")],
    "us-east-1",
)


# ------------------------------------------------------------------ the CONNECT request line

def test_a_connect_request_names_its_host_and_port():
    head = b"CONNECT ABC1234567.execute-api.us-east-1.amazonaws.com.:443 HTTP/1.1\r\nHost: x\r\n\r\n"
    assert parse_connect(head) == (API_HOST, 443)
    assert parse_connect(b"CONNECT [::1]:8443 HTTP/1.0\r\n\r\n") == ("::1", 8443)
    assert parse_connect(b"CONNECT 127.0.0.2:443 HTTP/1.1\r\n\r\n") == ("127.0.0.2", 443)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET http://example.com/ HTTP/1.1\r\n\r\n", 405),
        (b"CONNECT example.com HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT example.com:0 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT example.com:65536 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT example.com:+443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT exa mple.com:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT :443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT [zz]:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT ex\xc3\xa4mple.com:443 HTTP/1.1\r\n\r\n", 400),
        (b"CONNECT example.com:443 SPDY/3\r\n\r\n", 400),
    ],
)
def test_a_request_that_is_not_a_connect_to_host_and_port_is_refused_with_a_sentence(head, status):
    with pytest.raises(ConnectError) as refused:
        parse_connect(head)
    assert refused.value.status == status
    assert refused.value.sentence.endswith(".")


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(labels=st.lists(_LABEL, min_size=1, max_size=5), port=st.integers(1, 65535), upper=st.booleans())
def test_any_valid_host_and_port_parse_back_to_themselves(labels, port, upper):
    host = ".".join(labels)
    line = f"CONNECT {host.upper() if upper else host}:{port} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    assert parse_connect(line) == (host, port)


@given(head=st.binary(max_size=300))
def test_arbitrary_bytes_are_parsed_or_refused_with_a_status(head):
    try:
        host, port = parse_connect(head)
    except ConnectError as refused:
        assert refused.status in (400, 405)
    else:
        assert head.startswith(b"CONNECT ") and 0 < port < 65536 and host == host.lower()


@given(method=st.sampled_from(["CONNECT", "GET", "connect"]), authority=st.text(max_size=80),
       version=st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", ""]))
def test_near_valid_request_lines_are_parsed_or_refused_never_crash(method, authority, version):
    try:
        host, port = parse_connect(f"{method} {authority} {version}\r\n\r\n".encode("utf-8", "surrogatepass"))
    except ConnectError as refused:
        assert refused.status in (400, 405)
    else:
        assert method == "CONNECT" and version.startswith("HTTP/1.")
        assert " " not in host and "\r" not in host and "\n" not in host and 0 < port < 65536


# --------------------------------------------------------------------- where a host goes

def test_the_template_api_hosts_on_443_are_served_locally_and_the_rest_where_they_point():
    routes = EgressRoutes(HOSTS)

    assert isinstance(routes.decide(API_HOST.upper(), 443), LocalHost)
    assert isinstance(routes.decide("chat.example.com", 443), LocalHost)
    assert routes.decide(API_HOST, 8443) == Direct(API_HOST, 8443)
    other = execute_api_host("zzz9999999", "us-east-1")
    assert routes.decide(other, 443) == Direct(other, 443)
    assert routes.decide(execute_api_host("abc1234567", "eu-west-1"), 443) == Direct(
        "abc1234567.execute-api.eu-west-1.amazonaws.com", 443)


def test_other_hosts_go_through_the_developers_proxy_except_those_it_bypasses():
    routes = EgressRoutes.from_environment(HOSTS, {
        "HTTPS_PROXY": "http://ignored:1", "https_proxy": "http://al%40ice:s3cret@proxy.corp:3128",
        "NO_PROXY": ".internal.corp",
    })

    assert routes.decide("example.com", 443) == ViaProxy("proxy.corp", 3128, "Basic YWxAaWNlOnMzY3JldA==")
    assert routes.decide("db.internal.corp", 443) == Direct("db.internal.corp", 443)
    assert isinstance(routes.decide(API_HOST, 443), LocalHost)  # the template's hosts never leave


def test_without_a_developers_proxy_other_hosts_are_reached_directly():
    assert EgressRoutes.from_environment(HOSTS, {}).decide("example.com", 443) == Direct("example.com", 443)


# ------------------------------------------------- which stage a request to a local host reaches

@pytest.mark.parametrize(
    ("host", "path", "target"),
    [
        (API_HOST, "/dev/@connections/abc%3D", (4001, "/dev/@connections/abc%3D")),
        (API_HOST, "/prod/@connections/abc", (4002, "/prod/@connections/abc")),
        (API_HOST, "/prod", (4002, "/prod")),
        # An unknown stage goes to the first stage's gateway unchanged, which answers 403 as AWS does.
        (API_HOST, "/production/@connections/abc", (4001, "/production/@connections/abc")),
        # A custom domain: its mapping key becomes the stage; a mapping without key takes every path.
        ("chat.example.com", "/v1/@connections/abc?x=1", (4002, "/prod/@connections/abc?x=1")),
        ("chat.example.com", "/v2/@connections/abc", (4002, "/v2/@connections/abc")),
        ("chat.example.com", "/v%31/%40connections/a%3D", (4002, "/prod/%40connections/a%3D")),
        ("chat.example.com", "/v1", (4002, "/prod")),
        ("chat.example.org", "/@connections/abc", (4001, "/dev/@connections/abc")),
    ],
)
def test_a_request_reaches_the_stage_its_path_names(host, path, target):
    assert HOSTS[host].target(path) == target


def test_a_longer_mapping_key_wins_over_a_shorter_one():
    host = LocalHost("d.example", (ApiMapping("a", 1, "chat"), ApiMapping("b", 2, "chat/v2")))

    assert host.target("/chat/v2/@connections/x") == (2, "/b/@connections/x")
    assert host.target("/chat/@connections/x") == (1, "/a/@connections/x")
    assert host.target("/chatter/@connections/x") == (1, "/chatter/@connections/x")


def test_a_mapping_to_a_stage_that_is_not_served_is_left_out():
    mappings = [("x.example", "Api", "prod", ""), ("y.example", "Other", "dev", "")]
    hosts = local_hosts([("Api", "id", "dev", 1)], mappings, "us-east-1")

    assert set(hosts) == {"id.execute-api.us-east-1.amazonaws.com"}


def test_the_worker_variables_keep_those_the_template_declares():
    assert proxy_environment("http://127.0.0.1:9", {}) == {
        "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1",
    }
    assert proxy_environment("http://127.0.0.1:9", {"https_proxy": "http://corp:1"}) == {
        "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1",
    }


@given(path=st.text(alphabet=st.characters(codec="ascii", exclude_characters=" \r\n"), max_size=60),
       host=st.sampled_from(sorted(HOSTS)))
def test_any_path_reaches_one_of_the_hosts_stages(path, host):
    port, local_path = HOSTS[host].target("/" + path)

    assert port in {m.port for m in HOSTS[host].mappings}
    assert local_path.startswith("/")


# ------------------------------------------------------- custom domains read from the template

FORMS = Path(__file__).resolve().parents[2] / "fixtures" / "aws_endpoint_forms"


def _forms_refs(app) -> dict[str, str]:
    from wsstack.gateway.core import default_api_id

    refs = {api.logical_id: default_api_id(api.logical_id) for api in app.apis.values()}
    return {**refs, "ChatDomain": "chat.example.com", "DomainStage": "dev"}


def test_the_templates_api_mappings_name_domain_api_stage_and_key():
    from wsstack.stack import api_mappings
    from wsstack.template import load_app

    app = load_app(FORMS / "template.yaml")

    assert api_mappings(app, _forms_refs(app)) == [("chat.example.com", "DomainApi", "dev", "chat")]


def test_a_mapping_to_a_stage_the_api_does_not_declare_stops_start_up_with_one_sentence(tmp_path):
    from wsstack.stack import api_mappings
    from wsstack.template import TemplateError, load_app

    text = (FORMS / "template.yaml").read_text().replace("Stage: !Ref DomainStage", "Stage: production")
    (tmp_path / "template.yaml").write_text(text)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "echo.py").write_text((FORMS / "src" / "echo.py").read_text())
    app = load_app(tmp_path / "template.yaml")

    with pytest.raises(TemplateError) as refused:
        api_mappings(app, _forms_refs(app))
    assert str(refused.value) == (
        "ChatMapping: Stage 'production' is not a stage of DomainApi (dev); "
        "name one of its AWS::ApiGatewayV2::Stage resources."
    )


@pytest.mark.parametrize(("headers", "host"), [
    (b"Host: ABC.execute-api.us-east-1.amazonaws.com\r\nContent-Length: 2", "abc.execute-api.us-east-1.amazonaws.com"),
    (b"content-length: 0\r\nhost:  chat.example.com:443 ", "chat.example.com"),
    (b"Host: [::1]:8443", "::1"),
    (b"Content-Length: 0", ""),
    (b"Host: a\nb", ""),
])
def test_the_host_header_names_the_host_without_its_port(headers, host):
    assert host_header(headers) == host


@given(st.binary(max_size=300))
def test_any_header_bytes_give_a_lower_case_host_or_none(headers):
    found = host_header(headers)
    assert found == found.lower() and "\r" not in found and "\n" not in found
