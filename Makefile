# The two commands of the README. Each makes .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: reproduce test

# Where the interpreter lacks the venv module (Debian without python3-venv), virtualenv does the same.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { $(PYTHON) -m pip install -q virtualenv && $(PYTHON) -m virtualenv -q $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# Reproduce the article: run every default scenario, write the report under results/<run_id>/.
reproduce: $(VENV)/.installed
	$(PY) -m harness run

# Unit and real-backend tests (Go tests included), then every scenario as pytest items in its
# quick form over a GOGC matrix, in real containers.
test: $(VENV)/.installed
	$(PY) -m pytest tests
	$(PY) -m pytest scenarios/ --quick --matrix gogc=50,100,300
