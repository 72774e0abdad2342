"""Provider-backed models: how a goalflow model id becomes a pydantic-ai model, and how LLM calls
are retried.

Workflows pass only a model id string (`goalflow:<provider_id>:<model>`); `resolve_model` turns it
into a model. Inside an activity it loads the provider row and decrypts its key, so a credential
never enters workflow code, activity arguments or history.

The OpenAI client of a provider, and each model on it, are built once per worker (per event loop)
and reused: a new client costs a TLS context (~20-60 ms of CPU, measured with py-spy in
bench/agent_overhead.py) and a new connection per request. They are keyed by kind, base URL and
key, so an edited provider gets new ones at its next request; the row itself is read on every
request, so deactivating a provider or changing its key takes effect at once.
"""

import asyncio
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from openai import AsyncOpenAI
from pydantic_ai.models import Model, ModelResolutionContext
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers import Provider as PaiProvider
from pydantic_ai.providers.ollama import OllamaProvider
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.providers.openrouter import OpenRouterProvider
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from activities.provider_limits import LimitedModel
from contracts import errors
from core.crypto import CryptoError, decrypt
from core.db import session_scope
from core.metrics import metered
from core.models import Provider, ProviderKind
from core.settings import get_settings

MODEL_ID_PREFIX = "goalflow:"

DEFAULT_BASE_URLS: dict[ProviderKind, str] = {
    ProviderKind.openai: "https://api.openai.com/v1",
    ProviderKind.openrouter: "https://openrouter.ai/api/v1",
    ProviderKind.ollama: "http://127.0.0.1:11434/v1",
}

LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
"""Temporal owns LLM retries; the OpenAI client is built with `max_retries=0`."""

LLM_REQUEST_TIMEOUT = timedelta(seconds=120)
"""How long one HTTP request to a provider may take (the OpenAI client's timeout)."""
LLM_TIMEOUT = timedelta(minutes=30)
"""One attempt of a model-request activity: the wait for provider capacity (`provider_limits`)
plus the request itself. A hung request is cut by `LLM_REQUEST_TIMEOUT`, a dead worker by the
heartbeat timeout; a wait that leaves less than `LLM_REQUEST_TIMEOUT` of this gives up the
attempt and the retry keeps its place in the queue."""

CLIENTS_PER_LOOP = 64
"""Provider clients kept per event loop; the least recently used beyond this are dropped."""

# The workflow side only needs a model object for its name and profile; it never sends a request.
# Built once on the host so the sandbox never constructs an HTTP client.
_WORKFLOW_CLIENT = AsyncOpenAI(api_key="workflow-side-placeholder", base_url="http://127.0.0.1:9")

T = TypeVar("T")
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[tuple[str, ...], object]]
_clients = weakref.WeakKeyDictionary()


def base_url_for(kind: ProviderKind, base_url: str | None) -> str:
    """The configured base URL, or the kind's well-known default."""
    if base_url:
        return base_url
    if kind in DEFAULT_BASE_URLS:
        return DEFAULT_BASE_URLS[kind]
    raise ApplicationError("provider has no base_url", type=errors.PROVIDER_REJECTED, non_retryable=True)


def openai_client(*, kind: ProviderKind, base_url: str | None, api_key: str | None) -> AsyncOpenAI:
    """An OpenAI-protocol client for a provider; no client-side retries stacked on Temporal's."""
    # Ollama and many self-hosted servers ignore the key, but the client insists on one.
    return AsyncOpenAI(
        api_key=api_key or "no-key",
        base_url=base_url_for(kind, base_url),
        max_retries=0,
        timeout=LLM_REQUEST_TIMEOUT.total_seconds(),
    )


def _reused(key: tuple[str, ...], build: Callable[[], T]) -> T:
    """`build()` once per key and event loop (connections are tied to the loop they were opened
    on); the least recently used beyond `CLIENTS_PER_LOOP` are dropped."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), OrderedDict())
    found = per_loop.get(key)
    if found is None:
        found = per_loop[key] = build()
        while len(per_loop) > CLIENTS_PER_LOOP:
            per_loop.popitem(last=False)  # in-flight requests keep theirs alive
    else:
        per_loop.move_to_end(key)
    return cast(T, found)


def _key_of(kind: ProviderKind, base_url: str | None, api_key: str | None) -> tuple[str, str, str]:
    url = base_url_for(ProviderKind(kind), base_url)
    return ProviderKind(kind).value, url, hashlib.sha256((api_key or "").encode()).hexdigest()


def shared_client(*, kind: ProviderKind, base_url: str | None, api_key: str | None) -> AsyncOpenAI:
    """`openai_client`, built once per (kind, URL, key) and event loop and reused afterwards."""
    return _reused(
        _key_of(kind, base_url, api_key),
        lambda: openai_client(kind=kind, base_url=base_url, api_key=api_key),
    )


def build_model(*, kind: ProviderKind, model: str, client: AsyncOpenAI) -> Model:
    """A pydantic-ai chat model on the pydantic-ai provider that matches the kind."""
    provider: PaiProvider[AsyncOpenAI]
    match kind:
        case ProviderKind.openrouter:
            provider = OpenRouterProvider(openai_client=client)
        case ProviderKind.ollama:
            provider = OllamaProvider(openai_client=client)
        case _:
            provider = OpenAIProvider(openai_client=client)
    return OpenAIChatModel(model, provider=provider)


async def load_provider_client(provider_id: int) -> tuple[Provider, AsyncOpenAI]:
    """Load a provider and a new client of its own with the decrypted key (the caller closes it:
    a connection check); activity code only."""
    provider, api_key = await load_provider(provider_id)
    return provider, openai_client(kind=provider.kind, base_url=provider.base_url, api_key=api_key)


async def load_provider(provider_id: int) -> tuple[Provider, str | None]:
    """A provider row and its decrypted key, read now (an edit or deactivation applies at once)."""
    settings = get_settings()
    async with session_scope(settings) as session:
        provider = await session.get(Provider, provider_id)
    if provider is None:
        raise ApplicationError(
            f"provider {provider_id} does not exist",
            type=errors.PROVIDER_NOT_FOUND,
            non_retryable=True,
        )
    api_key: str | None = None
    if provider.encrypted_api_key is not None:
        try:
            api_key = decrypt(settings, provider.encrypted_api_key)
        except CryptoError as exc:
            raise ApplicationError(str(exc), type=errors.SECRET_UNREADABLE, non_retryable=True) from None
        if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            raise ApplicationError(
                f"the API key of provider {provider.name!r} cannot be sent in an HTTP header; set a new one",
                type=errors.PROVIDER_KEY_INVALID,
                non_retryable=True,
            )
    return provider, api_key


def parse_model_id(model_id: str) -> tuple[int, str] | None:
    """`goalflow:<provider_id>:<model>` → (provider_id, model); None for other ids."""
    if not model_id.startswith(MODEL_ID_PREFIX):
        return None
    provider_part, _, model = model_id[len(MODEL_ID_PREFIX) :].partition(":")
    if not provider_part.isdigit() or not model:
        raise ApplicationError(
            f"malformed model id {model_id!r}", type=errors.PROVIDER_REJECTED, non_retryable=True
        )
    return int(provider_part), model


async def resolve_model(ctx: ModelResolutionContext[Any], model_id: str) -> Model | None:
    """Turn a goalflow model id into a model; with credentials only inside an activity."""
    parsed = parse_model_id(model_id)
    if parsed is None:
        return None
    provider_id, model = parsed
    if not activity.in_activity():
        return build_model(kind=ProviderKind.openai, model=model, client=_WORKFLOW_CLIENT)
    return await provider_model(provider_id, model)


async def provider_model(provider_id: int, model: str) -> Model:
    """The model on an active provider, with its credentials, every request within the
    provider's limits as read now; activity code only."""
    provider, api_key = await load_provider(provider_id)
    if not provider.is_active:
        raise ApplicationError(
            f"provider {provider.name!r} is not active",
            type=errors.PROVIDER_INACTIVE,
            non_retryable=True,
        )
    kind, base_url = provider.kind, provider.base_url

    def build() -> Model:
        client = shared_client(kind=kind, base_url=base_url, api_key=api_key)
        return metered(build_model(kind=kind, model=model, client=client))  # tokens, cost

    # The model is reused with its client: building one computes its profile (~1 ms).
    reused: Model = _reused((*_key_of(kind, base_url, api_key), model), build)
    return LimitedModel(reused, provider=provider, reserve=LLM_REQUEST_TIMEOUT)
