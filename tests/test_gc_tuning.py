"""The API exempts its start-up heap from garbage collection once it is ready to serve
(core/gc_tuning.py: full collections scanning it stalled every request for 500+ ms under load)."""

import gc

from core.settings import Settings
from tests.conftest import api_client


async def test_the_api_freezes_its_start_up_heap_before_serving(settings: Settings) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with api_client(settings) as api:
        frozen = gc.get_freeze_count()
        assert (await api.get("/api/v1/config")).status_code == 200
    gc.unfreeze()  # the test session goes on collecting as before
    assert frozen > 100_000, "the objects alive at start-up are exempt from collection"
