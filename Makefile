# The two commands of the README. Both install what they need first (idempotent).
PYTHON ?= python3
PIP = $(PYTHON) -m pip
# The developers' shared data folder where there is one; else memprobe's default (~/.cache/memprobe/data),
# into which the demo fetches the data sets it needs on first use.
ifneq ($(wildcard ../shared/data),)
export MEMPROBE_DATA ?= $(abspath ../shared/data)
endif

.PHONY: install install-dev demo test lint

install:
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1 || $(PIP) install -q torch torchvision
	$(PIP) install -q -e '.[resmem]'

install-dev: install
	$(PIP) install -q -e '.[dev]'
	bash scripts/setup_test_env.sh

demo: install
	memprobe demo

lint:
	ruff check memprobe tests scripts perf
	lint-imports

test: install-dev lint
	$(PYTHON) -m pytest -ra --durations=30
