# Two commands do all set-up on a machine with only Python 3.11+:
#   make run    create .venv, install, start embedded Redis + workers + web server
#   make test   create .venv, install with test extras, run the whole suite
#   afterwards the command is .venv/bin/tributary (or `. .venv/bin/activate` to type `tributary`)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The first screen of `make run` is Tributary's banner: pip says nothing unless it fails.
PIP    := PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore $(BIN)/python -m pip --quiet --quiet
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test check bench clean

$(BIN)/python:
	@echo "Setting up $(VENV) (first run only; takes a minute)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@$(PIP) install -e '.[test]'
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	@$(PIP) install -e '.[test,bench]'
	@touch $(BENCH_STAMP)

run: $(STAMP)
	@$(BIN)/tributary run $(ARGS)

test: check
	$(BIN)/python -m pytest $(ARGS)

# Lint and format (ruff), strict types (mypy), the layer contracts of [tool.importlinter]:
# run before the suite by `make test`, so CI fails on any of them.
check: $(STAMP)
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy service workers tributary
	$(BIN)/lint-imports --no-cache

# Every bench records its figures in $(BENCH_RESULTS) (bench/record.py); the table of the
# latest figures is then written into bench/README.md and printed.
BENCH_RESULTS ?= bench/results.json
bench: $(BENCH_STAMP)
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/ingest.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/poll_scale.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/serve.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/freshness.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/freshness.py --push
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/memory.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/render.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/extraction_eval.py
	TRIBUTARY_BENCH_JSON=$(BENCH_RESULTS) $(BIN)/python bench/bounds.py
	@$(BIN)/python bench/table.py --results $(BENCH_RESULTS)

clean:
	rm -rf $(VENV) build *.egg-info
