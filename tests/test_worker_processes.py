"""`make run` starts WORKER_PROCESSES workers (one per core by default): Python runs one core's
worth of workflow and activity code per process, and Temporal spreads the task queue over all of
them. Each serves its metrics on its own port."""

from pathlib import Path

from core.launcher import children
from core.settings import Settings
from tests.stack import polling_pids, running_launcher, until


def test_each_worker_process_is_its_own_child_with_its_own_metrics_port() -> None:
    settings = Settings(
        worker_processes=3,
        llm_provider="none",
        temporal_address="127.0.0.1:7233",
        worker_metrics_address="0.0.0.0:9500",
    )
    workers = [child for child in children(settings) if child.argv[-1] == "worker"]
    assert [child.name for child in workers] == ["worker", "worker-2", "worker-3"]
    assert [(child.env or {}).get("WORKER_METRICS_ADDRESS") for child in workers] == [
        None,  # the first uses the setting itself
        "0.0.0.0:9501",
        "0.0.0.0:9502",
    ]


def test_the_default_is_one_worker_per_core_at_most_four() -> None:
    assert 1 <= Settings().worker_processes <= 4


async def test_two_worker_processes_under_make_run_both_poll_the_task_queue(tmp_path: Path) -> None:
    with running_launcher(tmp_path, WORKER_PROCESSES="2", WORKER_METRICS_ADDRESS="") as launcher:
        started = launcher.pids("worker") + launcher.pids("worker-2")
        assert len(started) == 2, launcher.output

        async def both_poll() -> bool:
            return set(started) <= await polling_pids(launcher)

        await until(both_poll, "both worker processes polling", launcher, 90)
