"""A local fake of the Telegram Bot API over HTTP, for the bot's tests.

aiogram talks to it through its real aiohttp session (`TelegramAPIServer.from_base`), so only
Telegram itself is fake. It answers the methods goalflow's bot calls with Telegram-shaped
objects, keeps every message it sent (text and buttons, as later edits leave them), refuses an
edit that changes nothing as Telegram does ("message is not modified"), records each call with
the time it arrived, and hands out updates a test injects through long-polled `getUpdates`.
"""

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "goalflow", "username": "goalflow_bot"}


@dataclass
class Call:
    """One Bot API request: its method, parameters (JSON fields decoded), files, arrival time and
    answer."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    at: float = 0.0
    """When the request arrived (monotonic seconds)."""
    result: Any = None
    """What the fake answered (a sent message, with its `message_id`)."""
    error: str | None = None


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-token"
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    """Every message the bot sent, by (chat id, message id), as its last edit left it."""
    webhook: dict[str, Any] | None = None
    polls: int = 0
    """`getUpdates` calls (not kept in `calls`: a polling bot makes one every few seconds)."""
    port: int = 0
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _update_ids: Any = field(default_factory=lambda: itertools.count(1))
    _message_ids: Any = field(default_factory=lambda: itertools.count(1))
    _callback_ids: Any = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ life cycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ what tests do

    @staticmethod
    def user(user_id: int, first_name: str = "Ada", username: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            found["username"] = username
        return found

    def message_update(
        self, user: dict[str, Any], text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """A text message from `user` (a private chat with them unless `chat_id` is given)."""
        chat = _chat(chat_id if chat_id is not None else user["id"], user)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": next(self._update_ids), "message": message}

    def callback_update(
        self, user: dict[str, Any], chat_id: int, message_id: int, data: str
    ) -> dict[str, Any]:
        """A press on a button of a message the bot sent."""
        message = self.messages[(chat_id, message_id)]
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._callback_ids)),
                "from": user,
                "chat_instance": f"ci-{chat_id}",
                "message": message,
                "data": data,
            },
        }

    async def inject(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for the bot's next `getUpdates`."""
        assert self._changed is not None
        async with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def of(self, method: str, **match: Any) -> list[Call]:
        """Calls of one method whose parameters include `match`."""
        return [
            call
            for call in self.calls
            if call.method == method and all(call.params.get(k) == v for k, v in match.items())
        ]

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages in a chat, oldest first, as they look now."""
        return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id]

    async def wait_for(
        self, predicate: Callable[[], Any], *, within: float = 60, what: str = "condition"
    ) -> Any:
        """Wait until `predicate()` answers something truthy (checked after every call)."""
        assert self._changed is not None
        try:
            async with asyncio.timeout(within), self._changed:
                while not (found := predicate()):
                    await self._changed.wait()
                return found
        except TimeoutError:
            methods = [f"{c.method}({_short(c.params)})" for c in self.calls[-15:]]
            raise AssertionError(
                f"fake Telegram: no {what} within {within}s; last calls: {methods}"
            ) from None

    async def wait_call(self, method: str, *, within: float = 60, **match: Any) -> Call:
        """The first call of `method` matching `match`, waiting for it if need be."""
        found: Call = await self.wait_for(
            lambda: next(iter(self.of(method, **match)), None), within=within, what=f"{method} {match}"
        )
        return found

    # ------------------------------------------------------------------ the Bot API

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        at = time.monotonic()
        params, files = await _params(request)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        call = Call(method, params, files, at)
        try:
            call.result = await handler(params, files)
        except _ApiError as exc:
            call.error = exc.description
            return _error(exc.code, exc.description)
        finally:
            if method.lower() != "getupdates":
                self.calls.append(call)  # recorded once answered: `result` is there to read
                await self._notify()
        return web.json_response({"ok": True, "result": call.result})

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _m_getme(self, params: dict[str, Any], files: Any) -> Any:
        return BOT_USER

    async def _m_getupdates(self, params: dict[str, Any], files: Any) -> Any:
        assert self._changed is not None
        self.polls += 1
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 2.0)
        async with self._changed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates and timeout > 0:
                try:
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(lambda: bool(self._updates))
                except TimeoutError:
                    pass
            return list(self._updates)

    async def _m_setwebhook(self, params: dict[str, Any], files: Any) -> Any:
        self.webhook = params
        return True

    async def _m_deletewebhook(self, params: dict[str, Any], files: Any) -> Any:
        self.webhook = None
        return True

    async def _m_getwebhookinfo(self, params: dict[str, Any], files: Any) -> Any:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }

    async def _m_setmycommands(self, params: dict[str, Any], files: Any) -> Any:
        return True

    async def _m_setchatmenubutton(self, params: dict[str, Any], files: Any) -> Any:
        return True

    async def _m_answercallbackquery(self, params: dict[str, Any], files: Any) -> Any:
        return True

    async def _m_sendchataction(self, params: dict[str, Any], files: Any) -> Any:
        return True

    async def _m_sendmessage(self, params: dict[str, Any], files: Any) -> Any:
        message = self._new_message(params)
        message["text"] = str(params["text"])
        return message

    async def _m_senddocument(self, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> Any:
        ref = str(params.get("document", ""))
        name, _ = files.get(ref.removeprefix("attach://"), ("document", b""))
        message = self._new_message(params)
        message["document"] = {
            "file_id": f"doc-{message['message_id']}",
            "file_unique_id": "u",
            "file_name": name,
        }
        if params.get("caption"):
            message["caption"] = str(params["caption"])
        return message

    async def _m_editmessagetext(self, params: dict[str, Any], files: Any) -> Any:
        message = self._existing(params)
        markup = params.get("reply_markup")
        if message.get("text") == params["text"] and message.get("reply_markup") == markup:
            raise _ApiError(400, "Bad Request: message is not modified: specified new message content "
                            "and reply markup are exactly the same as a current content and reply markup "
                            "of the message")  # fmt: skip
        message["text"] = str(params["text"])
        _set_markup(message, markup)
        return message

    async def _m_editmessagereplymarkup(self, params: dict[str, Any], files: Any) -> Any:
        message = self._existing(params)
        _set_markup(message, params.get("reply_markup"))
        return message

    def _new_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(chat_id, None),
            "from": BOT_USER,
        }
        _set_markup(message, params.get("reply_markup"))
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _existing(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _error(code: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": code, "description": description}, status=code)


def _chat(chat_id: int, user: dict[str, Any] | None) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": (user or {}).get("first_name", "someone")}
    return {"id": chat_id, "type": "group", "title": "goalflow group"}


def _set_markup(message: dict[str, Any], markup: Any) -> None:
    if markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


def _short(params: dict[str, Any]) -> str:
    text = json.dumps(params, default=str)
    return text if len(text) < 160 else text[:160] + "…"


async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """aiogram sends multipart form data: plain strings, JSON for objects, files by `attach://`."""
    params: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if request.content_type == "application/json":
        return dict(await request.json()), files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = (value.filename or key, value.file.read())
            continue
        text = str(value)
        if text[:1] in "[{":
            try:
                params[key] = json.loads(text)
                continue
            except ValueError:
                pass
        params[key] = text
    for key in ("chat_id", "message_id", "user_id", "offset", "limit"):
        if key in params and isinstance(params[key], str) and params[key].lstrip("-").isdigit():
            params[key] = int(params[key])
    return params, files
