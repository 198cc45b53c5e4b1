# Two commands do everything: `make run` runs the product, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)
# the suite runs on two processes (pytest-xdist), one per core; PYTEST_ARGS replaces this
PYTEST_ARGS ?= -n 2

.PHONY: run test test-fast manage lint format messages vendor clean help bench

help:
	@echo "make run        start PostgreSQL (embedded unless DATABASE_URL), migrate, seed demo data, serve on :8000 with a worker"
	@echo "make test       the whole test suite on PostgreSQL (PYTEST_ARGS='-x -k name' to narrow it)"
	@echo "make test-fast  the suite without browser and slow integration tests"
	@echo "make lint       ruff and mypy;  make messages  refresh and compile translations"
	@echo "make bench      member list and search timings at 10,000 vs 1,000,000 members (BENCH_SCALE=small: quick)"

$(BIN)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv sync --locked --quiet
	touch $@

run: $(BIN)/.installed
	$(BIN)/python -m config.launcher run

test: $(BIN)/.installed
	$(BIN)/python -m config.launcher test $(PYTEST_ARGS)

test-fast: $(BIN)/.installed
	$(BIN)/python -m config.launcher test -m "not browser and not slow" $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python -m config.launcher exec $(BIN)/python -m bench.run $(BENCH_ARGS)

manage: $(BIN)/.installed
	$(BIN)/python -m config.launcher exec $(BIN)/python manage.py $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: $(BIN)/.installed
	DJANGO_DEBUG=true $(BIN)/python manage.py makemessages -l zh_Hans -l en --ignore ".venv/*" --ignore "node_modules/*" --ignore "var/*" --ignore "tests/*" --ignore "bench/*" --no-obsolete
	DJANGO_DEBUG=true $(BIN)/python manage.py compilemessages --ignore ".venv/*" --ignore "node_modules/*"

vendor:
	scripts/vendor_static.sh

clean:
	rm -rf $(VENV) var/staticfiles
