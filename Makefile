# make serve: set up (venv, deps, migrations, models) then run gunicorn on 127.0.0.1:$PORT.
# make test:  same set-up with the dev requirements, then pytest (every test; what CI runs).
# make test-fast: the inner loop, every test but those marked system (tests/system/: they start
#             servers) or slow.
# Settings create nothing: manage.py (migrate, first) creates var/ and its key file.
# Every step is skipped when already done, so a second run starts at once.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5001
SOURCES := facia_site console capture calibration liveness accounts guard telemetry ml bench facia_client tests manage.py
export PORT

.PHONY: serve test test-fast lint docs bench soak setup setup-dev migrate models clean test-deps cluster-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall only when a requirements file changes. The dev requirements go on top of
# the runtime's, after them: two pips writing one .venv at once under make -j would clash.
$(VENV)/.stamp-runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-runtime
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Every step that runs manage.py has the installs it needs as prerequisites, never only an
# earlier place in a list: under make -j (any N) a list's entries run at once, and migrate ran
# while pip was still installing Django. setup-dev migrates after the dev requirements too
# (they may move a package the runtime shares), so it runs the two steps itself, in turn,
# as bin/entrypoint does (tests/project/test_makefile.py checks the graph).
MIGRATE = $(BIN)/python manage.py migrate --noinput -v 0
INSTALL_MODELS = $(BIN)/python manage.py install_models

setup: $(VENV)/.stamp-runtime
	$(MIGRATE)
	$(INSTALL_MODELS)

setup-dev: $(VENV)/.stamp-dev
	$(MIGRATE)
	$(INSTALL_MODELS)

migrate: $(VENV)/.stamp-runtime
	$(MIGRATE)

models: $(VENV)/.stamp-runtime
	$(INSTALL_MODELS)

# bin/entrypoint is what the container image runs too: migrate, models if missing, gunicorn.
serve: $(VENV)/.stamp-runtime
	PYTHON=$(BIN)/python exec bin/entrypoint serve

test: setup-dev test-deps
	$(BIN)/python -m pytest

# No Chromium or nginx needed: no test here starts a server (tests/project/test_test_layout.py).
test-fast: setup-dev
	$(BIN)/python -m pytest -m "not system and not slow"

# Debian's chromium, nginx-light, wrk, kubernetes-client and ffmpeg for the browser,
# scale-out, load-script, manifest and head-turn browser tests (when missing).
test-deps:
	@bin/install-test-deps

# The scale-out test alone, with its figures printed (also part of `make test`).
cluster-test: setup-dev test-deps
	$(BIN)/python -m pytest -s -p no:cacheprovider tests/system/test_cluster.py

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check $(SOURCES) bin/healthcheck
	$(BIN)/ruff format --check $(SOURCES) bin/healthcheck
	SECRET_KEY=$${SECRET_KEY:-lint-only} $(BIN)/mypy $(SOURCES)

# The documentation as a static site in site/ (git-ignored), offline; tests/docs/test_docs.py runs
# the same strict build, so a broken link or anchor fails `make test`.
docs: $(VENV)/.stamp-dev
	$(BIN)/mkdocs build --strict --site-dir site

# make bench [BENCH_ARGS="--size 640x480 --concurrency 8 --duration 2 --http-rounds 8"]: prints
# figures; the HTTP-against-bare ratios from interleaved rounds (bench.ratios).
bench: setup
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench $(BENCH_ARGS)

# 10 minutes at ~80% of measured capacity, loopback only; prints errors, latency, worker RSS
# and its slope. make soak SOAK_ARGS="--mode mixed": 70% live, 10% no face, 10% corrupt,
# 10% wrong hash_id at 25 req/s (wrk; hey sends one body only). SOAK_ARGS="--mode sessions":
# whole capture-session walks (verdict, gate refusal, failed head-turn challenge, bad and
# expired tokens, poll flood) at 2 walks/s, prune_sessions every 60 s, session rows printed.
soak: setup-dev
	@command -v hey >/dev/null || (apt-get update -qq && apt-get install -y -qq hey)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var/static .pytest_cache .ruff_cache site
