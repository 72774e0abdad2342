"""Temporal's remote codec protocol (`POST /api/v1/codec/encode|decode`) for the Web UI and CLI.

`temporal workflow show --codec-endpoint http://127.0.0.1:8000/api/v1/codec --codec-auth "Bearer
$TOKEN"` sends the token as a header. The Web UI cannot (it only forwards an OIDC token, over
HTTPS), so a browser is let in by a cookie it gets from `/api/v1/codec/login` by giving the API
token once; the Web UI then sends it when its Codec Server setting "include cross-origin
credentials" is on. Everyone else gets 401, and the Web UI shows them ciphertext.

`make run`'s own dev Web UI decodes with no login (CODEC_TRUSTED_ORIGINS): the launcher lists that
UI's origins (`http://localhost:<ui port>`, `http://127.0.0.1:<ui port>`) only when it starts the
dev server itself, on loopback, in dev; a codec call is then let in without a token when its
`Origin` is one of them, it comes from a loopback address and no proxy forwarded it. A browser
cannot forge `Origin` (a page elsewhere, even one rebinding its DNS name to 127.0.0.1, sends its
own), so web pages stay out. A local process can send any header, and so can read payloads
this way; on a dev machine a process of that user can read the keys in data/generated.env
anyway, and another user's process is the trade-off accepted for a UI that decodes at first
sight. Production refuses the setting (core/settings.py) and keeps the login.
"""

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from api.deps import SettingsDep
from api.errors import errors
from core.codec import CodecKeyError, EncryptionCodec, codec_from_setting
from core.payload_blobs import blob_codec
from core.settings import Settings

PREFIX = "/api/v1/codec"
FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")
"""Headers a reverse proxy adds: a request it relayed is not from this machine's browser, even
though it arrives from loopback."""
COOKIE = "goalflow_codec"
COOKIE_MAX_AGE_S = 12 * 3600

router = APIRouter(prefix=PREFIX, tags=["codec"])
_bearer = HTTPBearer(auto_error=False)


class PayloadJson(BaseModel):
    """A Temporal payload in protobuf JSON form: base64 metadata values and data."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class PayloadsJson(BaseModel):
    """The body of every codec call, request and answer alike."""

    payloads: list[PayloadJson] = Field(max_length=10_000)


def session_value(settings: Settings) -> str | None:
    """The cookie a token holder's browser carries: derived from the token, not the token (the
    run page's login, api/routes/webapp.py, gives the same value)."""
    if settings.api_token is None:
        return None
    token = settings.api_token.get_secret_value().encode()
    return hmac.new(token, b"goalflow codec session v1", hashlib.sha256).hexdigest()


def token_ok(settings: Settings, given: str | None) -> bool:
    """`given` is the API token (constant-time)."""
    expected = settings.api_token.get_secret_value() if settings.api_token else None
    return (
        given is not None
        and expected is not None
        and secrets.compare_digest(given.encode(), expected.encode())
    )


def session_ok(settings: Settings, cookie: str | None) -> bool:
    """`cookie` is the value a browser got by logging in with the API token (constant-time)."""
    expected = session_value(settings)
    return (
        expected is not None
        and cookie is not None
        and secrets.compare_digest(cookie.encode(), expected.encode())
    )


def trusted_local_browser(request: Request, settings: Settings) -> bool:
    """A codec call from `make run`'s own dev Web UI in a browser on this machine (see above)."""
    origin = request.headers.get("origin")
    trusted = {o.rstrip("/") for o in settings.codec_trusted_origins}
    if origin is None or origin.rstrip("/") not in trusted or request.client is None:
        return False
    if any(header in request.headers for header in FORWARDED):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # not an address (a Unix socket's peer, a test client's name)
        return False


async def require_codec_access(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The API token as a bearer header (CLI, scripts), the codec cookie (Web UI), or the dev
    Web UI of `make run` on this machine (CODEC_TRUSTED_ORIGINS)."""
    if credentials is not None and token_ok(settings, credentials.credentials):
        return
    if trusted_local_browser(request, settings):
        return
    if session_ok(settings, request.cookies.get(COOKIE)):
        return
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid bearer token (or codec cookie from /api/v1/codec/login)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _codec(settings: Settings) -> EncryptionCodec:
    codec = codec_from_setting(settings.codec_keys.get_secret_value() if settings.codec_keys else None)
    if codec is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "payload encryption is off: CODEC_KEYS is not set")
    return codec


def _b64(text: str, where: str) -> bytes:
    try:
        # Protobuf JSON writes standard base64; its parsers accept the URL-safe alphabet too.
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{where} is not base64") from None


def _to_protos(body: PayloadsJson) -> list[Payload]:
    return [
        Payload(
            metadata={k: _b64(v, f"payloads[{i}].metadata.{k}") for k, v in p.metadata.items()},
            data=_b64(p.data, f"payloads[{i}].data"),
        )
        for i, p in enumerate(body.payloads)
    ]


def _to_json(payloads: Sequence[Payload]) -> PayloadsJson:
    return PayloadsJson(
        payloads=[
            PayloadJson(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


@router.post("/encode", dependencies=[Depends(require_codec_access)], responses=errors(401, 409))
async def encode(body: PayloadsJson, settings: SettingsDep) -> PayloadsJson:
    """Encrypt payloads with the newest key (the Web UI's signal and start inputs)."""
    return _to_json(await _codec(settings).encode(_to_protos(body)))


@router.post("/decode", dependencies=[Depends(require_codec_access)], responses=errors(401, 409))
async def decode(body: PayloadsJson, settings: SettingsDep) -> PayloadsJson:
    """Decrypt payloads with whichever key wrote them (and put a large one's stored pieces back);
    ones the codec did not write pass through."""
    codec = blob_codec(settings, _codec(settings))  # puts a large payload's stored pieces back
    decoded = []
    for i, payload in enumerate(_to_protos(body)):
        try:
            decoded.extend(await codec.decode([payload]))
        except (CodecKeyError, LookupError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"payloads[{i}]: {exc}") from None
    return _to_json(decoded)


_LOGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>goalflow: Web UI decoding</title>
<h1>Show decrypted payloads in the Temporal Web UI</h1>
<form method="post" action="{prefix}/login">
<label>API token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Let this browser decode</button></form>
<p>Then, in the Web UI: <em>Codec Server</em> (the settings menu), check
<em>Use my browser setting</em>, endpoint <code>{endpoint}</code>, and
<em>Include cross-origin credentials</em>.</p>"""


def codec_endpoint(request: Request) -> str:
    """This API's codec endpoint as a browser reaches it."""
    return f"{str(request.base_url).rstrip('/')}{PREFIX}"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request) -> str:
    """A form for the API token (the page itself reveals nothing)."""
    return _LOGIN_PAGE.format(prefix=PREFIX, endpoint=codec_endpoint(request))


@router.post("/login", response_class=HTMLResponse, responses=errors(401))
async def login(
    request: Request, response: Response, settings: SettingsDep, token: Annotated[str, Form(max_length=1024)]
) -> str:
    """Give the API token once; this browser then gets the codec cookie (HttpOnly, this path only)."""
    if not token_ok(settings, token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API token")
    value = session_value(settings)
    assert value is not None  # a token matched, so one is configured
    response.set_cookie(
        COOKIE,
        value,
        max_age=COOKIE_MAX_AGE_S,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    hours = COOKIE_MAX_AGE_S // 3600
    return (
        "<!doctype html><meta charset='utf-8'><title>goalflow</title><p>This browser may now decode "
        f"payloads for {hours} hours. Codec endpoint: <code>{codec_endpoint(request)}</code></p>"
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(response: Response) -> None:
    """Forget this browser's codec cookie."""
    response.delete_cookie(COOKIE, path=PREFIX)


def web_ui_origins(settings: Settings) -> list[str]:
    """Where the Temporal Web UI is served from (127.0.0.1 and localhost name the same machine),
    and the trusted dev UI origins, which must pass CORS to be let in."""
    origin = settings.web_ui_url.rstrip("/")
    aliases = {origin, *(o.rstrip("/") for o in settings.codec_trusted_origins)}
    for a, b in (("//127.0.0.1", "//localhost"), ("//localhost", "//127.0.0.1")):
        if a in origin:
            aliases.add(origin.replace(a, b))
    return sorted(aliases)


class WebUiCors:
    """CORS for the Web UI's origin on the codec routes only, cookies allowed (the Web UI sends
    them with "include cross-origin credentials"); every other route keeps CORS_ORIGINS."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(f"{PREFIX}/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
