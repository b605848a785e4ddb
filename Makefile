# The two commands of the README. Each makes .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: reproduce test bench guest-deps

# Where the interpreter lacks the venv module (Debian without python3-venv), virtualenv does the same.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { $(PYTHON) -m pip install -q virtualenv && $(PYTHON) -m virtualenv -q $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Reproduce the article: run every default scenario, write the report under results/<run_id>/.
reproduce: $(VENV)/.installed
	$(VENV)/bin/goreclaim run

# The linter and the type checker (configured in pyproject.toml), unit and real-backend tests (Go
# tests included), then every scenario as pytest items in its quick form over a GOGC matrix, in
# real containers.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check harness tests benchmarks conftest.py
	$(VENV)/bin/mypy
	$(PY) -m pytest tests
	$(PY) -m pytest scenarios/ --quick --matrix gogc=50,100,300

# Speed and cost, printed as min/median/max (never a pass/fail test): the report on the reference
# run and on a synthetic 500-cell run, the sampler's own CPU at 100 Hz beside psrecord's, and a quick
# subset of scenarios with --workers 1 against --workers 2. BENCH_FLAGS=--fail-over=N
# makes a figure over N an error.
bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/bench_report.py $(BENCH_FLAGS)
	$(PY) benchmarks/bench_sampler.py --runs 3 --seconds 5
	$(PY) benchmarks/bench_workers.py --quick alloc_release madvdontneed syscalls release_threshold gogc_sweep

# Cells in a guest kernel (--matrix cgroup=v2 on a v1 host, or kernel=5.10|6.1|6.12): qemu, depmod and
# busybox from Debian, as root; the kernel itself is fetched and cached on first use.
guest-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 kmod busybox-static
