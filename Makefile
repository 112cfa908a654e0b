# The two commands a user needs: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install system-deps demo test lint bench clean

# The CPU build of torch must be installed by this exact pin before anything that needs torch.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,finbert]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# System packages some tests drive (nginx in front of API replicas); run as root, CI calls it before `make test`.
system-deps:
	apt-get update && apt-get install -y nginx

# The whole offline pipeline on the embedded default: a synthetic year of candles and news with the planted
# signal, ingest -> features -> news -> train -> select -> register, then promotion through the gates.
# A second run reuses every task whose lake inputs, config and code are unchanged, so it finishes faster.
# The promotion step may refuse (gates fail): make then goes on to show why in the summary.
demo: export SPXCAST_MARKET__SYNTHETIC__PLANTED_SIGNAL = true
demo: $(STAMP)
	$(BIN)/spxcast pipeline run full
	$(BIN)/spxcast data health
	-$(BIN)/spxcast models promote --reason "make demo"
	$(BIN)/spxcast models summary

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
