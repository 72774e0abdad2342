"""The API exempts its start-up heap from garbage collection once it is ready to serve
(core/gc_tuning.py: full collections scanning it stalled every request for 500+ ms under load)."""

import gc

import pytest

from core import gc_tuning
from core.settings import Settings
from tests.conftest import api_client


async def test_the_api_freezes_its_start_up_heap_before_serving(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gc_tuning, "_frozen", False)  # as in a process that just started
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with api_client(settings) as api:
        frozen = gc.get_freeze_count()
        assert (await api.get("/api/v1/config")).status_code == 200
    gc.unfreeze()  # the test session goes on collecting as before
    assert frozen > 100_000, "the objects alive at start-up are exempt from collection"
    gc_tuning.freeze_startup_heap()  # a second app in the same process freezes nothing more
    assert gc.get_freeze_count() == 0
