# Two commands do all set-up on a machine with only Python 3.11+:
#   make run    create .venv, install, start embedded Redis + workers + web server
#   make test   create .venv, install with test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/tributary run $(ARGS)

test: check
	$(BIN)/python -m pytest $(ARGS)

# Format, import contracts (pyproject [tool.importlinter]); run before the suite by `make test`.
check: $(STAMP)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/lint-imports --no-cache

bench: $(BENCH_STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/poll_scale.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/extraction_eval.py

clean:
	rm -rf $(VENV) build *.egg-info
