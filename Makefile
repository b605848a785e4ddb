# The two commands of the README. Each makes .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: reproduce test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# Reproduce the article: run every default scenario, write the report under results/.
reproduce: $(VENV)/.installed
	$(PY) -m harness run

# Unit tests, Go tests, real backend tests, and the scenarios in their quick form.
test: $(VENV)/.installed
	$(PY) -m pytest tests
