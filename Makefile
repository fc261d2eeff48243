# Two commands do everything: `make demo` and `make test`. Both create or reuse .venv.
# `make test`: ruff (lint, format check), mypy --strict, the docs site built with warnings as
# errors, then pytest (which starts the Mixpanel emulator and a Kafka-compatible broker itself).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck docs pytest

demo: $(STAMP)
	$(BIN)/python examples/simple_event.py
	$(BIN)/python examples/multiprocess_events.py
	$(BIN)/python examples/kafka_pipeline.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
