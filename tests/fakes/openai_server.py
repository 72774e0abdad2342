"""A small OpenAI-compatible HTTP server for tests: the real openai client and pydantic-ai
provider code run against it, so only the LLM itself is fake.

Behaviour is scripted per model name, so tests that run concurrently never share a script.
A model can be made slow (`slow`), or every answer (`latency`); the fake then counts its requests
in flight, remembers the most that were ever in flight at once (`peak_in_flight`, how a test sees
parallel requests really overlap) and records the ones the client gave up on (`aborted`), which
is how a test sees a cancellation reach the HTTP request. A slow answer takes its delay to the
millisecond, so a benchmark can compare against requests made directly. A request with
`"stream": true` is answered in chat-completion chunks, word by word `paces[model]` seconds apart
(or in kilobyte pieces at once), as a streaming model writes.

`python -m tests.fakes.openai_server --port P --latency 0.2` serves it as its own process (the
benchmarks do, so its CPU is not the worker's); `GET /_fake/stats` answers the counters.
"""

import argparse
import asyncio
import itertools
import json
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

Handler = Callable[[dict[str, Any]], dict[str, Any]]
"""Takes the chat-completions request body; returns an assistant `message` dict."""


@dataclass
class Fail:
    """Answer one request with an HTTP error in OpenAI's error shape (and `headers`, such as
    Retry-After)."""

    status: int
    message: str = "fake provider failure"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeOpenAI:
    """Programmable fake; `requests` records every call (path, headers, body)."""

    api_key: str | None = None
    models: list[str] = field(default_factory=lambda: ["fake-small", "fake-large"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Chat requests also record when they arrived (`at`) and were answered (`done_at`), in
    `time.time()` seconds."""
    scripts: dict[str, deque[Fail | Handler]] = field(default_factory=lambda: defaultdict(deque))
    handlers: dict[str, Handler] = field(default_factory=dict)
    default_handler: Handler | None = None
    """Answers models without a handler of their own (an echo when None)."""
    delays: dict[str, float] = field(default_factory=dict)
    latency: float = 0.0
    """Seconds every chat answer takes unless its model has its own delay (`slow`)."""
    detect_aborts: bool = True
    """Watch for clients hanging up during a slow answer (`aborted`); a benchmark turns it off, so
    hundreds of answers in flight cost the fake no polling."""
    in_flight: Counter[str] = field(default_factory=Counter)
    """Chat requests per model currently being answered (slowly)."""
    peak_in_flight: Counter[str] = field(default_factory=Counter)
    """The most chat requests per model that were ever in flight at the same moment."""
    total_in_flight: int = 0
    peak_total_in_flight: int = 0
    aborted: list[str] = field(default_factory=list)
    """Models whose slow request the client abandoned (disconnected) before the answer."""
    paces: dict[str, float] = field(default_factory=dict)
    """Seconds between the words of a streamed answer, per model (none: all at once)."""
    port: int = 0
    _ids: Any = field(default_factory=itertools.count)

    def slow(self, model: str, seconds: float) -> None:
        """Make every answer for a model take `seconds`, unless the client hangs up first."""
        self.delays[model] = seconds

    def delay_of(self, model: str) -> float:
        """How long an answer for `model` takes."""
        return self.delays.get(model, self.latency)

    async def _wait_or_abort(self, request: Request, model: str) -> bool:
        """Sit out the model's delay (to its end, not a polling step past it); False when the
        client disconnected meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.delay_of(model)
        self.in_flight[model] += 1
        self.peak_in_flight[model] = max(self.peak_in_flight[model], self.in_flight[model])
        self.total_in_flight += 1
        self.peak_total_in_flight = max(self.peak_total_in_flight, self.total_in_flight)
        try:
            if not self.detect_aborts:
                await asyncio.sleep(deadline - loop.time())
            while (left := deadline - loop.time()) > 0:
                if await request.is_disconnected():
                    self.aborted.append(model)
                    return False
                await asyncio.sleep(min(0.05, left))
        finally:
            self.in_flight[model] -= 1
            self.total_in_flight -= 1
        return True

    def stats(self) -> dict[str, Any]:
        """The counters, as `GET /_fake/stats` answers them."""
        return {
            "chat_requests": sum(1 for r in self.requests if r["path"] == "/v1/chat/completions"),
            "peak_total_in_flight": self.peak_total_in_flight,
            "peak_in_flight": dict(self.peak_in_flight),
            "aborted": len(self.aborted),
        }

    def reset_stats(self) -> None:
        """Forget recorded requests and peaks (between benchmark shapes)."""
        self.requests.clear()
        self.peak_in_flight.clear()
        self.peak_total_in_flight = self.total_in_flight
        self.aborted.clear()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, model: str, *steps: "Fail | Handler") -> None:
        """Queue one-shot behaviours for a model; after them its handler (or echo) answers."""
        self.scripts[model].extend(steps)

    def calls(self, model: str) -> list[dict[str, Any]]:
        """Chat requests made for a model."""
        return [r for r in self.requests if r["body"].get("model") == model]

    def _error(self, fail: Fail) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": fail.message, "type": "fake_error", "code": str(fail.status)}},
            status_code=fail.status,
            headers=fail.headers,
        )

    def _authorized(self, request: Request) -> bool:
        return self.api_key is None or request.headers.get("authorization") == f"Bearer {self.api_key}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def list_models(request: Request) -> Any:
            self.requests.append({"path": "/v1/models", "headers": dict(request.headers), "body": {}})
            if not self._authorized(request):
                return self._error(Fail(401, "Incorrect API key provided"))
            return {
                "object": "list",
                "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models],
            }

        @app.get("/_fake/stats")
        async def stats() -> Any:
            return self.stats()

        @app.post("/_fake/reset")
        async def reset() -> Any:
            self.reset_stats()
            return self.stats()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            record = {
                "path": "/v1/chat/completions",
                "headers": dict(request.headers),
                "body": body,
                "at": time.time(),
            }
            self.requests.append(record)
            try:
                return await answer(request, body)
            finally:
                record["done_at"] = time.time()

        async def answer(request: Request, body: dict[str, Any]) -> Any:
            if not self._authorized(request):
                return self._error(Fail(401, "Incorrect API key provided"))
            model = body.get("model", "")
            if model not in self.models and not model.startswith("fake-"):
                return self._error(Fail(404, f"The model `{model}` does not exist"))
            if self.delay_of(model) and not await self._wait_or_abort(request, model):
                return Response(status_code=499)  # nobody is listening any more
            queue = self.scripts.get(model)
            step: Fail | Handler | None = queue.popleft() if queue else None
            if isinstance(step, Fail):
                return self._error(step)
            handler = step or self.handlers.get(model) or self.default_handler or echo
            message = handler(body)
            if body.get("stream"):
                return StreamingResponse(self._stream(model, message, body), media_type="text/event-stream")
            return {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }

        return app

    async def _stream(self, model: str, message: dict[str, Any], body: dict[str, Any]) -> Any:
        """The answer as chat-completion chunks: its text word by word (`paces` apart), its tool
        calls in one chunk, then the finish reason and (when asked) the usage."""
        chunk_id = f"chatcmpl-{next(self._ids)}"

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time())}
            data.update(model=model, choices=[choice], **extra)
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        text = message.get("content") or ""
        if self.paces.get(model):
            words = [w + " " for w in text.split(" ")]
            words[-1] = words[-1][:-1]
        else:  # all at once: in pieces of a kilobyte, as a fast model's chunks would add up
            words = [text[i : i + 1024] for i in range(0, len(text), 1024)]
        for i, word in enumerate(words):
            if i and self.paces.get(model):
                await asyncio.sleep(self.paces[model])
            yield chunk({"content": word})
        calls = message.get("tool_calls") or []
        if calls:
            yield chunk({"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]})
        yield chunk({}, "tool_calls" if calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time())}
            yield f"data: {json.dumps({**data, 'model': model, 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"


def echo(body: dict[str, Any]) -> dict[str, Any]:
    """Default behaviour: answer with the last user message, or call the output tool with it."""
    last_user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    text = last_user if isinstance(last_user, str) else json.dumps(last_user)
    return {"role": "assistant", "content": f"echo: {text}"}


def tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An assistant message that calls one tool (how pydantic-ai receives structured output)."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{name}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def serve(fake: FakeOpenAI, sock: socket.socket) -> None:
    """Serve the fake on a bound socket until the process ends (its own process or thread)."""
    fake.port = sock.getsockname()[1]
    uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", access_log=False)).run(sockets=[sock])


def start(fake: FakeOpenAI) -> uvicorn.Server:
    """Serve the fake on a free loopback port in a background thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server


def main() -> None:
    """Serve a fake on its own: every answer echoes after `--latency` seconds."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible fake LLM server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    serve(FakeOpenAI(latency=args.latency), sock)


if __name__ == "__main__":
    main()
