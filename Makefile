# Two commands for a newcomer: `make demo` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format clean airflow

install: $(STAMP)

# constraints.txt is the resolved lock: every install gets the same versions.
$(STAMP): pyproject.toml constraints.txt scripts/system-packages
	scripts/system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/sentinel demo

# Airflow 3 standalone on a simulated district, UI at http://127.0.0.1:8080 (docs/operations.md)
airflow: install
	scripts/airflow-standalone

test: install
	$(BIN)/pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .sentinel .pytest_cache .mypy_cache .ruff_cache
