# The two README commands: `make demo` and `make test`. Both create .venv when missing and reuse it after.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEED ?= 0
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project metadata changes: a second run is fast.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The end-to-end path grows with the apps: each stage is a real CLI command a user can run alone.
demo: $(STAMP)
	$(BIN)/fraud info
	$(BIN)/detection info

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf .cache runs
