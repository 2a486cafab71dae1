# Two commands from a fresh clone: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit install clean bench screenshots

$(STAMP): pyproject.toml deploy/idp/package-lock.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# the local OpenID provider of `amiflow up` and the tests: oidc-provider, pinned by its lock file
	npm ci --prefix deploy/idp --no-audit --no-fund --silent
	@touch $(STAMP)

install: $(STAMP)

## run: the whole stack on the embedded default (Temporal dev server, PostgreSQL, worker) in .amiflow/
run: $(STAMP)
	$(BIN)/amiflow up

## bench: the figures of BENCHMARKS.md (prints, asserts nothing)
bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/verify.py

## test: lint, type-check (strict on domain/), then the test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy domain amiflow activities workflows journal worker.py

# PYTEST: pytest's options. By default two pytest-xdist workers (the machine has 2 cores; much of the
# suite waits on Temporal and PostgreSQL), each with its own Temporal dev server and PostgreSQL; the tests
# that start `amiflow up` stay on one worker (loadgroup). `make unit PYTEST=` runs them in one process.
PYTEST ?= -n 2 --dist loadgroup
unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST)

## screenshots: the README's pictures of the back office (docs/*.png), taken by its browser tests
screenshots: $(STAMP)
	AMIFLOW_SCREENSHOTS=1 $(BIN)/python -m pytest -q -n 2 tests/test_web_staff.py tests/test_web_dossier.py tests/test_web_review.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis deploy/idp/node_modules
