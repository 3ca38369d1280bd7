# make serve: set up (venv, deps, migrations, models) then run gunicorn on 127.0.0.1:$PORT.
# make test:  same set-up with the dev requirements, then pytest.
# Every step is skipped when already done, so a second run starts at once.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5001
export PORT

.PHONY: serve test lint soak setup setup-dev migrate models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall only when a requirements file changes.
$(VENV)/.stamp-runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.stamp-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.stamp-runtime $@

setup: $(VENV)/.stamp-runtime migrate models
setup-dev: $(VENV)/.stamp-dev migrate models

migrate: | $(BIN)/python
	$(BIN)/python manage.py migrate --noinput -v 0

models: | $(BIN)/python
	$(BIN)/python manage.py install_models

serve: setup
	exec $(BIN)/gunicorn -c facia_site/gunicorn.conf.py facia_site.wsgi

test: setup-dev
	$(BIN)/python -m pytest

# 10 minutes at ~80% of measured capacity, loopback only; prints errors, latency, worker RSS.
soak: setup-dev
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check facia_site accounts liveness guard ml bench tests manage.py
	$(BIN)/ruff format --check facia_site accounts liveness guard ml bench tests manage.py

clean:
	rm -rf $(VENV) var/static .pytest_cache .ruff_cache
