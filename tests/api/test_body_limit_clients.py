"""A body over the cap is a 413 that every client reads, including one that sends its whole body
before it reads an answer (Python's `urllib`). Answering before the body was read closed the socket
under such a client's upload: it saw "connection reset by peer", not the 413 (api/limits.py)."""

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

from core.settings import Settings
from tests.api.sse import served_api

BIG = 8 * 1024 * 1024


def _spec_body() -> bytes:
    spec = {"name": "big", "nodes": [{"id": "a", "tool": "noop", "input": {"value": "x" * BIG}}]}
    return json.dumps({"spec": spec}).encode()


def _post(url: str, token: str, data: bytes | Iterator[bytes], headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=data,  # urllib sends an iterator chunked
        headers={"content-type": "application/json", "authorization": token, **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_urllib_uploading_8_mb_reads_the_413_declared_or_chunked(settings: Settings) -> None:
    async with served_api(settings) as http:
        url = str(http.base_url.join("/api/v1/execute-dag"))
        token = http.headers["authorization"]
        body = _spec_body()

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        for data, headers in ((body, {}), (chunks(), {"transfer-encoding": "chunked"})):
            status, text = await asyncio.to_thread(_post, url, token, data, headers)
            assert status == 413, text[:200]
            assert b"request body larger than" in text
        # The connection pool and the server are fine afterwards.
        assert (await http.get("/api/v1/dags")).status_code == 200
