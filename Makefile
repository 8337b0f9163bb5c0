# gridrisk: `make run` serves the API on a private PostGIS; `make test` runs the whole suite.
# Both install what is missing. With GRIDRISK_DATABASE_URL set, they use that PostGIS instead.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
GR := $(VENV)/bin/gridrisk
PGC := scripts/pgcluster.sh
export GRIDRISK_PG_PORT ?= 25432
LOCAL := postgresql://gridrisk@127.0.0.1:$(GRIDRISK_PG_PORT)

ifdef GRIDRISK_DATABASE_URL
RUN_URL := $(GRIDRISK_DATABASE_URL)
TEST_URL := $(GRIDRISK_DATABASE_URL)
USE_PRIVATE := no
else
RUN_URL := $(LOCAL)/gridrisk
TEST_URL := $(LOCAL)/gridrisk_test
USE_PRIVATE := yes
endif

.PHONY: help run test db db-test stop deps lint format bench clean replica replica-stop

help:
	@echo "make run    install what is missing, start the private PostGIS, migrate, load the demo city, serve on :8000"
	@echo "make test   the same setup into a test database, then lint and the whole test suite"
	@echo "make stop   stop the private PostGIS cluster"
	@echo "make bench  run the benchmarks in bench/ against the demo city"
	@echo "make replica       a streaming replica of the private cluster on port GRIDRISK_PG_PORT+2 (see README, Scaling out)"
	@echo "make replica-stop  stop it"

$(VENV)/.installed: pyproject.toml constraints.txt scripts/bootstrap-python.sh
	scripts/bootstrap-python.sh
	@touch $@

deps: $(VENV)/.installed

db:
ifeq ($(USE_PRIVATE),yes)
	$(PGC) install
	$(PGC) start
	$(PGC) createdb gridrisk
endif

db-test:
ifeq ($(USE_PRIVATE),yes)
	$(PGC) install
	$(PGC) start
	$(PGC) createdb gridrisk_test
endif

run: deps db
	GRIDRISK_DATABASE_URL=$(RUN_URL) $(GR) db upgrade
	GRIDRISK_DATABASE_URL=$(RUN_URL) $(GR) demo ensure
	GRIDRISK_DATABASE_URL=$(RUN_URL) $(GR) serve --host $${GRIDRISK_HOST:-127.0.0.1} --port $${GRIDRISK_PORT:-8000}

test: deps db-test lint
	scripts/install-browser.sh
ifeq ($(USE_PRIVATE),yes)
	GRIDRISK_DATABASE_URL=$(TEST_URL) $(PY) -m pytest -q $(PYTEST_ARGS) || { $(PGC) diagnose; exit 1; }
else
	GRIDRISK_DATABASE_URL=$(TEST_URL) $(PY) -m pytest -q $(PYTEST_ARGS)
endif

replica: db
	$(PGC) replica-start

replica-stop:
	$(PGC) replica-stop

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: deps db
	GRIDRISK_DATABASE_URL=$(RUN_URL) $(GR) db upgrade
	GRIDRISK_DATABASE_URL=$(RUN_URL) $(GR) demo ensure
	GRIDRISK_DATABASE_URL=$(RUN_URL) $(PY) bench/run.py

stop:
ifeq ($(USE_PRIVATE),yes)
	$(PGC) stop
endif

clean: stop
	rm -rf .gridrisk $(VENV) .pytest_cache
