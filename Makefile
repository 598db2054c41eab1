# DB Architect: `make demo` runs the whole product locally, `make test` passes the suite.
# On a fresh Debian machine, as root. See README.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PGPORT ?= 5544
DBNAME ?= dbarchitect
# The demo's scratch repository: the agent commits its migrations there, never in this checkout.
DEMO_REPO := $(CURDIR)/.local/demo-repo
export DATABASE_URL ?= postgres://postgres@127.0.0.1:$(PGPORT)/$(DBNAME)
export REDIS_URL ?= redis://127.0.0.1:6379/0
export DBARCHITECT_PGPORT := $(PGPORT)
# Every command runs with the production settings (DEBUG off): the local run's SECRET_KEY is
# generated once into the ignored .local/, and its cookies go over plain http on 127.0.0.1.
ifndef SECRET_KEY
SECRET_KEY := $(shell mkdir -p .local && umask 077 && { test -s .local/secret_key || od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > .local/secret_key; } && cat .local/secret_key)
endif
export SECRET_KEY
export SESSION_COOKIE_SECURE ?= false
export CSRF_COOKIE_SECURE ?= false

.PHONY: services install database migrate demo serve worker beat test lint bench

services:  ## install (Debian, root) and start PostgreSQL with the extensions, and Redis
	@bash scripts/services.sh

$(VENV)/.installed: pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed  ## the Python packages, into .venv

database: services
	@psql -q -h 127.0.0.1 -p $(PGPORT) -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = '$(DBNAME)'" | grep -q 1 \
	  || psql -q -h 127.0.0.1 -p $(PGPORT) -U postgres -c 'CREATE DATABASE "$(DBNAME)"'

migrate: install database
	@$(PY) manage.py migrate --no-input -v0
	@$(PY) manage.py collectstatic --no-input -v0

demo: migrate  ## everything: services, install, migrate, admin user, demo data, workload, audit, serve
	@$(PY) manage.py ensure_admin
	@$(PY) manage.py seed_demo --users $${DEMO_USERS:-20000} --logs $${DEMO_LOGS:-1000000} --if-empty
	@$(PY) manage.py nlsql_train --schema --file demo/nlsql_pairs.yaml
	@$(PY) manage.py run_demo_workload
	@$(PY) manage.py demo_git_repo --path $(DEMO_REPO)
	@DBARCHITECT_GIT_REPO=$(DEMO_REPO) $(PY) manage.py run_audit
	@echo "Admin: http://127.0.0.1:8000/admin/ (proposal branches: git -C $(DEMO_REPO) branch)"
	@DBARCHITECT_GIT_REPO=$(DEMO_REPO) $(PY) manage.py runserver 127.0.0.1:8000

serve: migrate
	@$(PY) manage.py runserver 127.0.0.1:8000

worker: migrate
	@$(VENV)/bin/celery -A config worker -l info

beat: migrate
	@$(VENV)/bin/celery -A config beat -l info

test: export DBARCHITECT_TEST_TOOLS := 1
test: install database  ## the whole suite against the real services (and a PostgreSQL 17)
	@bash scripts/pg17.sh
	@bash scripts/run_tests.sh

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

bench: migrate
	@$(PY) bench/run_all.py
