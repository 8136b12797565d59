# One entry point for humans and CI. Every target builds the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench chaos lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/pos-agent demo

bench: $(STAMP)
	mkdir -p build
	$(BIN)/pos-agent bench --json build/bench.json

chaos: $(STAMP)
	mkdir -p build
	$(BIN)/pos-agent chaos --json build/chaos.json

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy agent offline_store printers

clean:
	rm -rf $(VENV) build .pytest_cache
