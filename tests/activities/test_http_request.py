"""`http_request`: SSRF refusals (every spelling of an internal address, and redirects to one),
allow-listed loopback, redirects, size limit, timeout, and typed errors."""

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools.http import MAX_RESPONSE_BYTES, is_public, literal_address
from activities.tools.registry import TOOLS
from contracts.tools import ToolResult
from core.settings import Settings, get_settings
from tests.conftest import unique


class Handler(BaseHTTPRequestHandler):
    """Routes: /json, /echo (POST), /redirect?to=URL, /loop, /big, /slow."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/json":
            self._send(
                200, json.dumps({"ok": True, "host": self.headers["Host"]}).encode(), "application/json"
            )
        elif path == "/redirect":
            self._send(302, b"", Location=query.removeprefix("to="))
        elif path == "/loop":
            self._send(302, b"", Location="/loop")
        elif path == "/big":
            self._send(200, b"a" * (MAX_RESPONSE_BYTES + 100_000))
        elif path == "/slow":
            time.sleep(2)
            self._send(200, b"late")
        else:
            self._send(404, b"no such page")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        echo = {
            "body": body.decode(),
            "content_type": self.headers.get("Content-Type"),
            "auth": self.headers.get("Authorization"),
        }
        self._send(200, json.dumps(echo).encode(), "application/json")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (timeouts, size limits) are expected here."""


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """A plain HTTP server on loopback; yields its port."""
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


@pytest.fixture
def allow(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set HTTP_ALLOWLIST for one test on the settings the activity reads."""

    def set_allowlist(*entries: str) -> None:
        monkeypatch.setattr(get_settings(), "http_allowlist", list(entries))

    return set_allowlist


async def request(**args: Any) -> ToolResult:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_id=unique("http"))
    result = await environment.run(TOOLS["http_request"].activity, args)
    assert isinstance(result, ToolResult)
    return result


async def refused(**args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await request(**args)
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/json",
        "http://localhost:{port}/json",
        "http://[::1]:{port}/json",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.0.1/",
        "http://0x7f000001:{port}/json",
        "http://2130706433:{port}/json",
        "http://127.1:{port}/json",
        "http://[::ffff:127.0.0.1]:{port}/json",
        "http://[::ffff:7f00:1]:{port}/json",
        "http://0.0.0.0:{port}/json",
        "http://[::]:{port}/json",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[2002:7f00:1::]/",
        "https://localhost./",
    ],
)
async def test_internal_destinations_are_refused(settings: Settings, server: int, url: str) -> None:
    error = await refused(url=url.format(port=server))
    assert error.type == "HttpDestinationBlocked"
    assert error.non_retryable


async def test_allow_listed_loopback_works(settings: Settings, server: int, allow: Any) -> None:
    allow("127.0.0.1")
    result = await request(url=f"http://127.0.0.1:{server}/json")
    output = result.output
    assert output["status"] == 200
    assert output["json"] == {"ok": True, "host": f"127.0.0.1:{server}"}
    assert output["headers"]["content-type"] == "application/json"
    assert output["truncated"] is False


async def test_allow_list_takes_networks_and_keeps_host_header(
    settings: Settings, server: int, allow: Any
) -> None:
    allow("127.0.0.0/8", "::1/128")
    result = await request(url=f"http://localhost:{server}/json")
    # The request went to the checked address, but the server still saw the name asked for.
    assert result.output["json"]["host"] == f"localhost:{server}"


async def test_redirect_to_loopback_is_refused(settings: Settings, server: int, allow: Any) -> None:
    allow("localhost")  # only the first hop's host is allowed
    target = f"http://127.0.0.1:{server}/json"
    error = await refused(url=f"http://localhost:{server}/redirect?to={target}")
    assert error.type == "HttpDestinationBlocked"
    assert "127.0.0.1" in error.message


async def test_redirect_to_metadata_address_is_refused(settings: Settings, server: int, allow: Any) -> None:
    allow("127.0.0.1")
    error = await refused(
        url=f"http://127.0.0.1:{server}/redirect?to=http://169.254.169.254/latest/meta-data/"
    )
    assert error.type == "HttpDestinationBlocked"


async def test_allowed_redirect_is_followed(settings: Settings, server: int, allow: Any) -> None:
    allow("127.0.0.1")
    result = await request(url=f"http://127.0.0.1:{server}/redirect?to=/json")
    assert result.output["status"] == 200
    assert result.output["url"] == f"http://127.0.0.1:{server}/json"


async def test_redirect_loop_is_typed(settings: Settings, server: int, allow: Any) -> None:
    allow("127.0.0.1")
    error = await refused(url=f"http://127.0.0.1:{server}/loop")
    assert error.type == "HttpTooManyRedirects"


async def test_post_json_body_and_headers(settings: Settings, server: int, allow: Any) -> None:
    allow("127.0.0.1")
    result = await request(
        method="post",
        url=f"http://127.0.0.1:{server}/echo",
        headers={"Authorization": "Bearer t0k"},
        body={"a": [1, 2]},
    )
    assert result.output["json"] == {
        "body": '{"a": [1, 2]}',
        "content_type": "application/json",
        "auth": "Bearer t0k",
    }


async def test_large_response_is_truncated_and_stored_as_artifact(
    settings: Settings, server: int, allow: Any
) -> None:
    allow("127.0.0.1")
    result = await request(url=f"http://127.0.0.1:{server}/big")
    assert result.artifact is not None
    assert '"truncated":true' in (settings.artifacts_dir / result.artifact).read_text()[-200:]
    assert result.size_bytes > MAX_RESPONSE_BYTES
    assert result.size_bytes < MAX_RESPONSE_BYTES + 10_000


async def test_timeout_is_a_retryable_typed_failure(settings: Settings, server: int, allow: Any) -> None:
    allow("127.0.0.1")
    error = await refused(url=f"http://127.0.0.1:{server}/slow", timeout_s=0.3)
    assert error.type == "HttpRequestFailed"
    assert not error.non_retryable


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "not a url",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://0177.0.0.1/",
    ],
)
async def test_invalid_urls_are_typed(settings: Settings, url: str) -> None:
    error = await refused(url=url)
    assert error.type == "UrlInvalid"
    assert error.non_retryable


async def test_bad_method_is_input_error(settings: Settings) -> None:
    error = await refused(method="TRACE", url="http://example.com/")
    assert error.type == "ToolInputInvalid"


def test_address_classification() -> None:
    assert is_public(ip_address("93.184.216.34"))
    assert is_public(ip_address("2606:4700::1111"))
    for internal in ("127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a00:1::", "::", "::1"):
        assert not is_public(ip_address(internal)), internal
    assert literal_address("2130706433") == ip_address("127.0.0.1")
    assert literal_address("0x7f.1") == ip_address("127.0.0.1")
    assert literal_address("[::1]") == ip_address("::1")
    assert literal_address("example.com") is None
