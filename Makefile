# Two commands do all the set-up on a fresh machine:
#   make run    runs the service with embedded Redis, SQLite and the WeChat emulator
#   make test   runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint browser bench bench-workers bench-profile bench-memory bench-topologies bench-tracking venv clean

run: $(STAMP)
	$(BIN)/python -m dev.run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	@if command -v node >/dev/null 2>&1; then \
		set -e; set -x; \
		node client/build.js --check; \
		PYTHON=$(CURDIR)/$(BIN)/python node --test --test-reporter=spec client/test/*.test.js; \
		npm --prefix client ci --no-audit --no-fund --loglevel=error; \
		client/node_modules/.bin/tsc -p client/test/types; \
	else \
		echo "node not found: skipped the JavaScript client tests (client/test)"; \
	fi

# The browser tier (tests/browser) drives Debian's chromium through its
# chromedriver; without them it skips. .ci/run calls this before make test.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
		echo "browser: chromium and chromedriver are installed"; \
	else \
		set -e; set -x; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-workers: $(STAMP)
	$(BIN)/python -m bench.workers

bench-profile: $(STAMP)
	$(BIN)/python -m bench.profiling

bench-memory: $(STAMP)
	$(BIN)/python -m bench.memory

bench-topologies: $(STAMP)
	$(BIN)/python -m bench.topologies

bench-tracking: $(STAMP)
	$(BIN)/python -m bench.tracking

lint: $(STAMP)
	$(BIN)/ruff check .

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) instance .pytest_cache client/node_modules
