# The only entry points; CI (.ci/run) calls the same targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check install lock clean

## make run: install if needed, migrate, serve the API on localhost:8000 and run the scheduler
run: $(STAMP)
	$(BIN)/ripen run

## make test: the whole test suite (SQLite; PostgreSQL too when RIPEN_TEST_DATABASE_URL is set)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
