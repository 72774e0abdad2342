"""`GET /api/v1/artifacts` (newest first, paginated) and `GET /api/v1/artifacts/{filename}`."""

import httpx
import pytest

from core.db import session_scope
from core.settings import Settings
from storage.artifacts import save_artifact
from tests.conftest import unique


async def store(settings: Settings, name: str, content: bytes | str, **extra: str) -> None:
    async with session_scope(settings) as session:
        await save_artifact(session, settings, name=name, content=content, **extra)


async def test_serves_file_with_its_content_type(api: httpx.AsyncClient, settings: Settings) -> None:
    name = f"{unique('report')}.md"
    await store(settings, name, "# Weekly\n", workflow_id="dag-1-abc", node_id="send")
    response = await api.get(f"/api/v1/artifacts/{name}")
    assert response.status_code == 200, response.text
    assert response.text == "# Weekly\n"
    assert response.headers["content-type"].startswith("text/markdown")

    data = f"{unique('data')}.json"
    await store(settings, data, '{"a": 1}')
    response = await api.get(f"/api/v1/artifacts/{data}")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"a": 1}


@pytest.mark.parametrize(
    ("suffix", "content"),
    [
        (".html", "<script>alert(1)</script>"),
        (".svg", '<svg xmlns="http://www.w3.org/2000/svg" onload="x()"/>'),
    ],
)
async def test_active_artifacts_never_run_on_the_api_origin(
    api: httpx.AsyncClient, settings: Settings, suffix: str, content: str
) -> None:
    name = f"{unique('llm')}{suffix}"
    await store(settings, name, content)
    response = await api.get(f"/api/v1/artifacts/{name}")
    assert response.status_code == 200, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["content-disposition"].startswith("attachment")


async def test_passive_artifacts_are_inline_and_sandboxed(api: httpx.AsyncClient, settings: Settings) -> None:
    name = f"{unique('notes')}.md"
    await store(settings, name, "# hi\n")
    response = await api.get(f"/api/v1/artifacts/{name}")
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "sandbox"


async def test_lists_newest_first_with_pagination(api: httpx.AsyncClient, settings: Settings) -> None:
    names = [f"{unique('list')}.txt" for _ in range(3)]
    for name in names:
        await store(settings, name, name)
    response = await api.get("/api/v1/artifacts", params={"limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert [a["name"] for a in page] == [names[2], names[1]]
    assert page[0]["size_bytes"] == len(names[2])
    assert len(page[0]["sha256"]) == 64
    second = (await api.get("/api/v1/artifacts", params={"limit": 1, "offset": 2})).json()
    assert second[0]["name"] == names[0]
    assert (await api.get("/api/v1/artifacts", params={"limit": 0})).status_code == 422


async def test_overwrite_replaces_content_and_metadata(api: httpx.AsyncClient, settings: Settings) -> None:
    name = f"{unique('again')}.txt"
    await store(settings, name, "one")
    await store(settings, name, "second")
    assert (await api.get(f"/api/v1/artifacts/{name}")).text == "second"
    listed = [a for a in (await api.get("/api/v1/artifacts")).json() if a["name"] == name]
    assert len(listed) == 1
    assert listed[0]["size_bytes"] == 6


async def test_unknown_artifact_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/api/v1/artifacts/{unique('missing')}.txt")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/v1/artifacts/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/artifacts/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/artifacts/%252e%252e%252fetc%252fpasswd",
        "/api/v1/artifacts/..%5C..%5Cetc%5Cpasswd",
        "/api/v1/artifacts/%2e%2e",
        "/api/v1/artifacts/..",
        "/api/v1/artifacts/.env",
        "/api/v1/artifacts/a%00b.txt",
        "/api/v1/artifacts/%2Fetc%2Fpasswd",
    ],
)
async def test_traversal_attempts_are_refused(
    api: httpx.AsyncClient, settings: Settings, raw_path: str
) -> None:
    # A file one level above the artifacts dir that traversal would reach.
    (settings.artifacts_dir.parent / "passwd").write_text("secret")
    request = api.build_request("GET", "http://api")
    request.url = request.url.copy_with(raw_path=raw_path.encode())
    response = await api.send(request)
    assert response.status_code in (400, 404), response.text
    assert "secret" not in response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        assert "detail" in response.json()


async def test_save_artifact_refuses_traversal_names(settings: Settings) -> None:
    from storage.artifacts import ArtifactNameInvalid

    for name in ("../x.txt", "/tmp/x.txt", "a/../../x", "C:\\x.txt"):
        with pytest.raises(ArtifactNameInvalid):
            await store(settings, name, "x")
