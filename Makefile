# The only entry points; CI (.ci/run) calls the same targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCHEMA_CHECK := tests/schema_check/node_modules/.package-lock.json

.PHONY: run test lint typecheck check install lock clean chromium bench

## make run: install if needed, migrate, serve the API on localhost:8000, run the scheduler, and serve Prefect's UI on localhost:4200
run: $(STAMP)
	$(BIN)/ripen run --ui

## make test: the whole test suite (SQLite; PostgreSQL too when RIPEN_TEST_DATABASE_URL is set)
test: $(STAMP) chromium $(SCHEMA_CHECK)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: every benchmark scenario on SQLite and PostgreSQL (figures printed and in bench/results.json)
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## ajv and the yaml package (npm) for the test that reads the shipped YAML as an editor does
$(SCHEMA_CHECK): tests/schema_check/package-lock.json
	npm ci --prefix tests/schema_check --no-audit --no-fund --loglevel=error

## Debian's Chromium for the browser tests (Playwright cannot download its own browser here)
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
	  || { echo "cannot install chromium: run 'apt-get install chromium' as root"; exit 1; }; }

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## make lock: re-resolve the pinned set into constraints.txt (then prove it: make test on a fresh clone)
lock:
	rm -rf /tmp/ripen-lock && $(PYTHON) -m venv /tmp/ripen-lock
	/tmp/ripen-lock/bin/pip install --quiet -e '.[dev]'
	head -3 constraints.txt > constraints.new
	/tmp/ripen-lock/bin/pip freeze --exclude-editable | grep -v '^-e ' >> constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
