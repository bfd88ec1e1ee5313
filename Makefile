# The two commands of the README, and what they need. Everything installs from the lock into .venv.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

MELTANO_VENV := .meltano-venv
export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false
export MELTANO_CLI_DISABLE_VERSION_CHECK := true

.PHONY: demo push-demo airflow-demo test check lint typecheck unit venv meltano bench clean

## demo: the main job on the emulator: meltano run tap-disruptive target-duckdb, then what landed
demo: venv meltano
	$(VENV)/bin/python scripts/demo.py

## push-demo: DT's push path on the emulator: its Data Connector -> disruptive-receiver (killed and
## restarted part way) -> the spool -> meltano run tap-disruptive target-duckdb, then what landed
push-demo: venv meltano
	$(VENV)/bin/python scripts/push_demo.py

## airflow-demo: the provider's example DAGs on a real Airflow (api-server, scheduler, dag-processor,
## triggerer) against the emulator: publishes touches, door, freezer and leak events, prints the DAG runs
airflow-demo: venv
	$(VENV)/bin/python scripts/airflow_demo.py

## test: lint, type-check and run every test
test: lint typecheck unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

# End-to-end tests run `meltano run` and target-postgres: Meltano and its plugins are installed first.
# Most tests wait on other processes, so six run at once even on two cores; tests are handed out one at
# a time, the longest first (see tests/conftest.py).
unit: venv meltano
	$(VENV)/bin/pytest -n 6 --maxschedchunk 1

## check: the edit loop: lint, type-check and the tests that need no process but the emulator's, quickly
check: lint typecheck
	SIMULATED_SCHEDULES=200 $(VENV)/bin/pytest -n 2 -m "not e2e"

## bench: run the benchmarks and print their ratios
bench: venv
	$(VENV)/bin/python -m benchmarks

venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --all-extras --compile-bytecode --python "$$(command -v $(PYTHON))"
	touch $@

meltano: $(MELTANO_VENV)/.installed

# Meltano lives in a venv of its own (it pins sqlalchemy<2.1); `meltano install` builds the plugins' venvs.
$(MELTANO_VENV)/.installed: requirements/meltano.lock meltano.yml pyproject.toml $(UV)
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(UV) pip sync --python $(MELTANO_VENV)/bin/python --compile-bytecode requirements/meltano.lock
	$(MELTANO_VENV)/bin/meltano install
	touch $@

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

clean:
	rm -rf $(VENV) $(TOOLS) $(MELTANO_VENV) .meltano output .mypy_cache .ruff_cache .pytest_cache
