"""Unkind input is refused at the door with a 422 naming the field, the same on SQLite and on
PostgreSQL, and changes nothing: structures nested too deep, NUL characters, numbers that are not
finite, typos in field names, a chunked body over the cap (api/json_guard.py,
api/unknown_fields.py, api/limits.py)."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from core.db import session_scope
from core.models import Goal
from core.settings import Settings
from tests.conftest import ROOT, api_client, unique

GOAL = {"title": "t", "objective": "o"}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest_asyncio.fixture(scope="module")
async def sqlite_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's settings on a migrated SQLite file (the embedded default of `make run`)."""
    folder = tmp_path_factory.mktemp("sqlite-api")
    lite = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{folder}/app.db"})
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = lite.database_url
    config.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, config, "head")
    # Its DAG ids start far above the session database's: both share one Temporal namespace, where
    # a DAG's executions are found by its id, and a DAG with executions may not be deleted.
    with sqlite3.connect(folder / "app.db") as db:
        # (Its migrations left a row for `dag` at 0: the row is set, not added beside it.)
        db.execute("UPDATE sqlite_sequence SET seq = 1000000 WHERE name = 'dag'")
    return lite


@pytest_asyncio.fixture(scope="module")
async def sqlite_api(sqlite_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same API on that SQLite file."""
    async with api_client(sqlite_settings) as http:
        yield http


def raw(text: str) -> dict[str, Any]:
    """A request body sent as it is (NaN and 1e400 are not what httpx's JSON encoder writes)."""
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


UNKIND: dict[str, tuple[str, dict[str, Any], list[str | int], str]] = {
    "params nested 300 deep": (
        "/api/v1/goals",
        {"json": {**GOAL, "params": nested(300)}},
        ["body", "params", *["a"] * 31],
        "too_deep",
    ),
    "params nested 5000 deep": (
        "/api/v1/goals",
        raw('{"title": "t", "objective": "o", "params": ' + '{"a": ' * 5000 + "1" + "}" * 5001),
        ["body"],
        "too_deep",
    ),
    "a NUL in the title": (
        "/api/v1/goals",
        {"json": {**GOAL, "title": "a\x00b"}},
        ["body", "title"],
        "nul_character",
    ),
    "a NUL in a params key": (
        "/api/v1/goals",
        {"json": {**GOAL, "params": {"k\x00": 1}}},
        ["body", "params", "k\x00"],
        "nul_character",
    ),
    "NaN in params": (
        "/api/v1/goals",
        raw('{"title": "t", "objective": "o", "params": {"x": NaN}}'),
        ["body", "params", "x"],
        "finite_number",
    ),
    "1e400 in params": (
        "/api/v1/goals",
        raw('{"title": "t", "objective": "o", "params": {"x": [1, 1e400]}}'),
        ["body", "params", "x", 1],
        "finite_number",
    ),
    "an over-long title": (
        "/api/v1/goals",
        {"json": {**GOAL, "title": "x" * 201}},
        ["body", "title"],
        "string_too_long",
    ),
    "a DAG node input nested 40 deep": (
        "/api/v1/dags",
        {"json": {"spec": {"name": "deep", "nodes": [{"id": "a", "tool": "noop", "input": nested(40)}]}}},
        ["body", "spec", "nodes", 0, "input", *["a"] * 28],
        "too_deep",
    ),
}


@pytest.mark.parametrize("case", sorted(UNKIND))
async def test_unkind_bodies_are_the_same_422_on_postgresql_and_sqlite_and_store_nothing(
    api: httpx.AsyncClient, sqlite_api: httpx.AsyncClient, case: str
) -> None:
    path, body, loc, kind = UNKIND[case]
    answers = []
    for http in (api, sqlite_api):
        before = (await http.get(path)).json()
        response = await http.post(path, **body)
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        answers.append((problem["loc"], problem["type"]))
        listed = await http.get(path)
        assert listed.status_code == 200 and listed.json() == before
    assert answers == [(loc, kind), (loc, kind)]


async def test_a_typo_in_a_dag_node_is_refused_naming_the_field_it_meant(api: httpx.AsyncClient) -> None:
    node = {"id": "gate", "tool": "noop", "input": {"value": 1}, "requires_aproval": True}
    response = await api.post("/api/v1/dags", json={"spec": {"name": unique("typo"), "nodes": [node]}})
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "spec", "nodes", 0, "requires_aproval"]
    assert problem["type"] == "extra_forbidden"
    assert "did you mean 'requires_approval'" in problem["msg"]
    # A typo at the top of a body too, and one in an update.
    top = await api.post("/api/v1/goals", json={**GOAL, "objectve": "o"})
    assert top.status_code == 422 and "did you mean 'objective'" in top.text
    free = await api.post(
        "/api/v1/dags",
        json={
            "spec": {
                "name": unique("free"),
                "params": {"anything": {"x": 1}},
                "nodes": [{"id": "a", "tool": "noop", "input": {"value": 1}}],
            }
        },
    )
    assert free.status_code == 201, free.text  # params are free-form on purpose


async def test_a_chunked_body_over_the_cap_is_a_413_like_a_declared_one(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "t", "objective": "'
        for _ in range(8):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    response = await api.post("/api/v1/goals", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "request body larger than" in response.json()["detail"]


def test_the_guard_names_depth_without_recursion(tmp_path: Path) -> None:
    from api.json_guard import check_body

    assert check_body(b'{"a": [' * 100_000) == ([], "nested deeper than 32 levels", "too_deep")
    assert check_body(b'{"ok": [1, 2.5, "x"]}') is None
    assert check_body(b"not json") is None


async def test_a_template_whose_output_type_cannot_fit_is_refused_when_the_dag_is_stored(
    api: httpx.AsyncClient,
) -> None:
    name = unique("typed")
    calc = {"id": "calc", "tool": "calculator", "input": {"expression": "6*7"}}
    write = {
        "id": "write",
        "tool": "write_artifact",
        "input": {"name": "answer.md", "content": "{{nodes.calc.output}}"},
        "depends_on": ["calc"],
    }
    response = await api.post("/api/v1/dags", json={"spec": {"name": name, "nodes": [calc, write]}})
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]["problems"]
    assert "node 'write': input['content'] takes string" in problem and "calculator" in problem
    assert (await api.get("/api/v1/dags", params={"name": name})).json() == []
    # Inside a longer string the output is written as text: that fits.
    write["input"] = {"name": "answer.md", "content": "The answer: {{nodes.calc.output}}"}
    fitting = await api.post("/api/v1/dags", json={"spec": {"name": name, "nodes": [calc, write]}})
    assert fitting.status_code == 201, fitting.text


async def test_ids_are_never_given_again_after_a_delete_on_postgresql_and_sqlite(
    api: httpx.AsyncClient, sqlite_api: httpx.AsyncClient
) -> None:
    for http in (api, sqlite_api):
        node = {"id": "a", "tool": "noop", "input": {"value": 1}}
        ids = []
        for _ in range(2):
            made = await http.post("/api/v1/dags", json={"spec": {"name": unique("ids"), "nodes": [node]}})
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        deleted = await http.delete(f"/api/v1/dags/{ids[-1]}")
        assert deleted.status_code == 204, (http is sqlite_api, deleted.text)
        again = await http.post("/api/v1/dags", json={"spec": {"name": unique("ids"), "nodes": [node]}})
        assert again.json()["id"] > ids[-1]  # the deleted DAG's executions name its id


async def test_a_corrupt_stored_row_fails_only_its_own_read_on_postgresql_and_sqlite(
    api: httpx.AsyncClient, sqlite_api: httpx.AsyncClient, settings: Settings, sqlite_settings: Settings
) -> None:
    for http, where, corrupt in (
        (api, settings, None),
        (sqlite_api, sqlite_settings, "{this is not json"),
    ):
        async with session_scope(where) as session:
            good = Goal(title=unique("good"), objective="o")
            bad = Goal(title=unique("bad"), objective="o", params=nested(300))
            session.add_all([good, bad])
            await session.commit()
            if corrupt is not None:  # SQLite keeps JSON as text: a row written around the API
                await session.exec(
                    text("UPDATE goal SET params = :p WHERE id = :i").bindparams(p=corrupt, i=bad.id)
                )  # type: ignore[call-overload]
                await session.commit()
        listed = await http.get("/api/v1/goals", params={"limit": 500})
        assert listed.status_code == 200, listed.text
        ids = [g["id"] for g in listed.json()]
        assert good.id in ids and bad.id not in ids
        alone = await http.get(f"/api/v1/goals/{bad.id}")
        assert alone.status_code == 409, alone.text
        detail = alone.json()["detail"]
        assert f"goal {bad.id}'s stored data cannot be read (" in detail
        assert ("nested too deep" if corrupt is None else "params") in detail
        fixed = await http.patch(f"/api/v1/goals/{bad.id}", json={"params": {"ok": 1}})
        assert fixed.status_code == 200, fixed.text
        assert (await http.get(f"/api/v1/goals/{bad.id}")).json()["params"] == {"ok": 1}
