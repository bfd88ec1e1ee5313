# The two commands of the README, and what they need. Everything installs from the lock into .venv.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint typecheck unit venv bench clean

## demo: start the emulator and show live sensor events (the main job)
demo: venv
	$(VENV)/bin/python scripts/demo.py

## test: lint, type-check and run every test
test: lint typecheck unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest

## bench: run the benchmarks and print their ratios
bench: venv
	$(VENV)/bin/python -m benchmarks

venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --all-extras --compile-bytecode --python "$$(command -v $(PYTHON))"
	touch $@

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
