# Two commands: `make run` and `make test`. Both install what they need (uv, then the locked env).
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run test lint bench sync uv rotate-keys rotate-codec-key

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: uv
	@$(UV) sync --frozen --quiet

# The launcher runs as make's own child, not under `uv run`: a `kill -9` of the process a user sees
# as the supervisor must take its children with it (core/processes.py), and uv would stay between.
run: sync
	$${UV_PROJECT_ENVIRONMENT:-.venv}/bin/python -m core.launcher

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy .

# Two processes (pytest-xdist), each with its own Temporal dev server, worker and database;
# a test file stays in one process, so a module's stack starts once.
test: lint
	$(UV) run --frozen pytest -n 2 --dist loadfile

bench: sync
	$(UV) run --frozen python -m bench.dag_overhead
	$(UV) run --frozen python -m bench.agent_overhead
	$(UV) run --frozen python -m bench.ttft
	$(UV) run --frozen python -m bench.local_model

rotate-keys: sync
	$(UV) run --frozen python -m cli rotate-keys

rotate-codec-key: sync
	$(UV) run --frozen python -m cli rotate-codec-key
