"""`http_request`: outbound HTTP with SSRF protection.

The host is resolved here and every address it resolves to must be public (not private,
loopback, link-local, multicast, reserved, unspecified or otherwise non-global — IPv4-mapped and
6to4 IPv6 forms are unwrapped, and decimal/hex/short IPv4 spellings are parsed) unless the host
or the address is in settings `http_allowlist` (host names, IPs or CIDR networks). The request
then goes to the checked address itself, so a second DNS answer cannot swap in another one
(DNS rebinding), and every redirect hop is checked the same way.

Retries: GET, HEAD and OPTIONS are safe to repeat, and so is any request whose input says
`"idempotent": true`. Every other method (POST, PUT, PATCH, DELETE — PUT and DELETE are
idempotent by HTTP semantics, but a node may use them for effects that are not, so it has to say
so) is sent at most once per place in a workflow (`activities.idempotency.once_external`): it is
retried only when the failure proves it never left (connection refused or not established in
time, no connection from the pool), and fails with the non-retryable `HttpOutcomeUnknown` when it
may have arrived (read/write timeout, dropped connection) or when an earlier attempt began it and
never recorded the answer. A finished request's answer is recorded, so a retry returns it.
"""

import asyncio
import json
import re
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import httpx

from activities.idempotency import OutcomeUnknown, once_external
from activities.tools.base import ToolError, make_tool
from contracts.tool_inputs import HttpRequestInput
from contracts.tools import (
    HTTP_DESTINATION_BLOCKED,
    HTTP_OUTCOME_UNKNOWN,
    HTTP_REQUEST_FAILED,
    HTTP_TOO_MANY_REDIRECTS,
    URL_INVALID,
)
from core.settings import get_settings

IPAddress = IPv4Address | IPv6Address

MAX_RESPONSE_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures that prove the request did not leave: no connection was ever established."""


class NotSent(ToolError):
    """The request provably never left (no connection); retrying it is always safe."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=HTTP_REQUEST_FAILED, retryable=True)


def _blocked(error: str) -> ToolError:
    return ToolError(error, kind=HTTP_DESTINATION_BLOCKED)


def literal_address(host: str) -> IPAddress | None:
    """The IP a host string spells, including `2130706433`, `0x7f000001` and `127.1`."""
    host = host.strip("[]")
    try:
        return ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address is globally routable and not a special-purpose one."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
        if address in ip_network("64:ff9b::/96"):  # NAT64 reaches the embedded IPv4 address
            return is_public(IPv4Address(int(address) & 0xFFFFFFFF))
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def allowlisted(host: str, address: IPAddress | None, allowlist: list[str]) -> bool:
    """Whether the host name, or the address, matches an allow-list entry (name, IP or CIDR)."""
    host = host.lower().rstrip(".")
    for entry in allowlist:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry == host:
            return True
        if address is None:
            continue
        try:
            network = ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            continue
        if network.version == address.version and address in network:
            return True
    return False


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address a host resolves to, in resolver order, without duplicates."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise ToolError(
                f"cannot resolve {host!r} right now", kind=HTTP_REQUEST_FAILED, retryable=True
            ) from None
        raise ToolError(f"cannot resolve host {host!r}", kind=URL_INVALID) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def parse_url(raw: str | httpx.URL) -> httpx.URL:
    """An absolute http(s) URL with a host, or a UrlInvalid ToolError."""
    try:
        url = raw if isinstance(raw, httpx.URL) else httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ToolError(f"invalid URL: {exc}", kind=URL_INVALID) from None
    if url.scheme not in ("http", "https"):
        raise ToolError("only http and https URLs are allowed", kind=URL_INVALID)
    if not url.host:
        raise ToolError("the URL has no host", kind=URL_INVALID)
    if url.userinfo:
        raise ToolError("credentials in the URL are not allowed; use headers", kind=URL_INVALID)
    return url


async def checked_addresses(url: httpx.URL, allowlist: list[str]) -> list[IPAddress]:
    """The addresses a request to `url` may connect to; HttpDestinationBlocked if any is not."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    if allowlisted(host, None, allowlist):
        return await resolve(host, port)
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: these names are loopback whatever a resolver says (or fails to say).
        try:
            resolved = await resolve(host, port)
        except ToolError:
            resolved = []
        addresses = [a for a in resolved if a.is_loopback] or [IPv4Address("127.0.0.1")]
    else:
        addresses = await resolve(host, port)
    if not addresses:
        raise ToolError(f"cannot resolve host {host!r}", kind=URL_INVALID)
    for address in addresses:
        if not is_public(address) and not allowlisted(host, address, allowlist):
            # Refuse the whole host, not just this address: a name that resolves to an internal
            # address among public ones is exactly what rebinding attacks use.
            raise _blocked(
                f"{host!r} resolves to {address}, which is not a public address "
                "(add it to HTTP_ALLOWLIST to allow it)"
            )
    return addresses


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port is None else f"{host}:{url.port}"


async def _send_pinned(
    client: httpx.AsyncClient,
    *,
    method: str,
    url: httpx.URL,
    addresses: list[IPAddress],
    headers: dict[str, str],
    content: bytes | None,
) -> httpx.Response:
    """Send to the first checked address that accepts a connection, never re-resolving."""
    last_error: httpx.TransportError | None = None
    for address in addresses:
        request = client.build_request(
            method,
            url.copy_with(host=str(address)),
            headers={**headers, "Host": _host_header(url)},
            content=content,
            extensions={"sni_hostname": url.host} if url.scheme == "https" else {},
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last_error = exc
    assert last_error is not None
    raise last_error


async def _read_limited(response: httpx.Response) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], True
    return b"".join(chunks), False


def _request_body(body: str | dict[str, Any] | list[Any] | None) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if isinstance(body, str):
        return body.encode(), None
    return json.dumps(body).encode(), "application/json"


async def fetch(args: HttpRequestInput, *, allowlist: list[str]) -> dict[str, Any]:
    """Perform the request under the SSRF rules; the tool's output."""
    url = parse_url(args.url)
    method = args.method
    content, content_type = _request_body(args.body)
    headers = {k: v for k, v in args.headers.items() if k.lower() not in ("host", "content-length")}
    if content_type and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = content_type
    timeout = httpx.Timeout(args.timeout_s)
    answered = False  # once a hop has answered, the request has reached a server
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            addresses = await checked_addresses(url, allowlist)
            try:
                response = await _send_pinned(
                    client, method=method, url=url, addresses=addresses, headers=headers, content=content
                )
                answered = True
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        target = parse_url(url.join(location))
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method == "POST"
                        ):
                            method = "GET" if method != "HEAD" else method
                            content = None
                            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                        if target.host != url.host:
                            headers = {
                                k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS
                            }
                        url = target
                        continue
                    data, truncated = await _read_limited(response)
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                raise _transport_error(exc, url=url, args=args, answered=answered) from None
            return _output(response, url, data, truncated)
    raise ToolError(f"more than {MAX_REDIRECTS} redirects", kind=HTTP_TOO_MANY_REDIRECTS)


def _transport_error(
    exc: httpx.TransportError, *, url: httpx.URL, args: HttpRequestInput, answered: bool
) -> ToolError:
    """Retryable when the request never left or may be repeated; HttpOutcomeUnknown otherwise."""
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        message = f"{url.host} did not answer within {args.timeout_s}s"
    else:
        message = f"request to {url.host} failed: {type(exc).__name__}"
    if isinstance(exc, _NEVER_SENT) and not answered:
        return NotSent(message)
    if args.repeatable:
        return ToolError(message, kind=HTTP_REQUEST_FAILED, retryable=True)
    return ToolError(
        f"{message}; the {args.method} may have reached the server, so it is not sent again "
        '(set "idempotent": true if repeating it is harmless)',
        kind=HTTP_OUTCOME_UNKNOWN,
    )


def _output(response: httpx.Response, url: httpx.URL, data: bytes, truncated: bool) -> dict[str, Any]:
    text = data.decode(response.charset_encoding or "utf-8", errors="replace")
    parsed: Any = None
    if not truncated and "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return {
        "status": response.status_code,
        "url": str(url),
        "headers": dict(response.headers.items()),
        "text": text,
        "json": parsed,
        "truncated": truncated,
    }


async def http_request(args: HttpRequestInput) -> dict[str, Any]:
    allowlist = get_settings().http_allowlist
    if args.repeatable:
        return await fetch(args, allowlist=allowlist)
    try:
        sent: dict[str, Any] = await once_external(
            "http_request",
            args.model_dump(),
            lambda: fetch(args, allowlist=allowlist),
            never_sent=lambda exc: isinstance(exc, NotSent),
        )
    except OutcomeUnknown as exc:
        raise ToolError(str(exc), kind=HTTP_OUTCOME_UNKNOWN) from None
    return sent


SPEC = make_tool(
    name="http_request",
    description="Make an HTTP(S) request to a public address and return status, headers and the "
    "body as text (and parsed JSON when it is JSON). Internal addresses are refused.",
    input_model=HttpRequestInput,
    impl=http_request,
)
