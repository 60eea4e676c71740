# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv from requirements.lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: demo test lint sandbox-lazada sandbox-huawei-vod lock clean

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python include/demo.py

test: $(BIN)/.installed
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check plugins dags tests include bench
	$(BIN)/ruff format --check plugins dags tests include bench
	$(BIN)/mypy

sandbox-lazada: $(BIN)/.installed
	$(BIN)/media-sandbox lazada --port 8787

sandbox-huawei-vod: $(BIN)/.installed
	$(BIN)/media-sandbox huawei-vod --port 8788

# Re-resolve the pinned lock after editing pyproject.toml dependencies.
lock: $(BIN)/.installed
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .airflow-demo
