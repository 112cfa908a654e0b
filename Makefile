# The two commands a user needs: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_REQS := deploy/airflow/requirements.txt deploy/airflow/constraints-py3.11.txt
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-$(shell cat $(AIRFLOW_REQS) | cksum | cut -d' ' -f1)

.PHONY: install demo test lint bench clean airflow-venv system-deps up

# The CPU build of torch must be installed by this exact pin before anything that needs torch.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,finbert]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Airflow 3 in its own environment (it pins an older FastAPI than spxcast), at the tested exact versions of
# its constraints file; the real Airflow DAG tests run it (tests/integration/test_airflow_dags.py).
$(AIRFLOW_STAMP): $(AIRFLOW_REQS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
		"airflow-venv: deploy/airflow/constraints-py3.11.txt was tested on Python 3.11; set PYTHON=python3.11")'
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q -r deploy/airflow/requirements.txt \
		-c deploy/airflow/constraints-py3.11.txt
	rm -f $(AIRFLOW_VENV)/.installed-*
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

# Debian packages the tests need (as root, as CI runs): docker-compose lints deploy/compose.yaml; nginx fronts
# two API replicas in tests/e2e/test_serving_nginx.py; chromium runs the dashboard's browser test (driven
# by Playwright with this executable, no browser download).
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose nginx chromium

# The whole product on the embedded default. First the offline pipeline: a synthetic year of candles and
# news with the planted signal, ingest -> features -> news -> train -> select -> register, then promotion
# through the gates. A second run reuses every task whose lake inputs, config and code are unchanged, so it
# finishes faster. The promotion step may refuse (gates fail): make then goes on to show why in the summary.
# Then serving: the API on 127.0.0.1 (a free port) replays the newest stored session at full speed with the
# champion, the served predictions with their intervals and the realised outcomes are printed as the market
# stream delivers them, the API stops, one monitoring pass judges the served rows, and the next places to
# look are printed (without a champion the serving part says why it has nothing to serve).
demo: export SPXCAST_MARKET__SYNTHETIC__PLANTED_SIGNAL = true
demo: $(STAMP)
	$(BIN)/spxcast pipeline run full
	$(BIN)/spxcast data health
	-$(BIN)/spxcast models promote --reason "make demo"
	$(BIN)/spxcast models summary
	$(BIN)/spxcast demo serving

# The embedded stack on this machine until Ctrl-C: the API with the live loop and the dashboard (a model comes
# from `make demo`). The loop replays stored bars with REPLAY='FROM TO' (UTC, e.g. make up
# REPLAY='2024-12-16T14:00 2024-12-16T20:00'), or follows OANDA when SPXCAST_OANDA__TOKEN is set.
API_PORT ?= 8000
DASHBOARD_PORT ?= 8501
REPLAY ?=
SPEED ?= 60x
up: $(STAMP)
	@if [ -n "$(REPLAY)" ]; then live="--live --replay $(REPLAY) --speed $(SPEED)"; loop="replaying $(REPLAY) at $(SPEED)"; \
	elif [ -n "$$SPXCAST_OANDA__TOKEN" ]; then export SPXCAST_LIVE__SOURCE=oanda; live="--live"; loop="following OANDA"; \
	else live=""; loop="off: set REPLAY='FROM TO' to replay stored bars or SPXCAST_OANDA__TOKEN for OANDA"; fi; \
	trap 'kill $$api $$dashboard 2>/dev/null; wait' INT TERM EXIT; \
	$(BIN)/spxcast serve --port $(API_PORT) $$live & api=$$!; \
	$(BIN)/spxcast dashboard --port $(DASHBOARD_PORT) --api-url http://127.0.0.1:$(API_PORT) & dashboard=$$!; \
	sleep 2; \
	echo "API:       http://127.0.0.1:$(API_PORT)  (docs at /docs)"; \
	echo "dashboard: http://127.0.0.1:$(DASHBOARD_PORT)"; \
	echo "live loop: $$loop. Ctrl-C stops everything."; \
	wait

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf .spxcast .pytest_cache .mypy_cache .ruff_cache
