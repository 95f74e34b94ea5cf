# Two commands for a fresh machine: `make demo` and `make test`. Everything else
# (virtual environment, Python packages, Debian's graphviz, and for the tests
# Debian's chromium and postgresql) is set up on the way.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DB ?= demo.db
# npm packages for the browser tests (the real Mermaid, and playwright-core to drive Debian's
# chromium; it never downloads a browser), installed into a gitignored folder.
NODE_DIR := .cache/node
NPM_PACKAGES := mermaid@11.17.2 playwright-core@1.57.0
NODE_STAMP := $(NODE_DIR)/.installed-$(subst @,-,$(subst $(eval) ,_,$(NPM_PACKAGES)))

.PHONY: setup system-deps postgres-deps test-deps demo test bench images clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# graphviz's `dot` draws diagrams (demo and tests); chromium is only for the tests
# that open the review page headless.
system-deps:
	@command -v dot >/dev/null 2>&1 || { echo "installing graphviz (dot)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq graphviz >/dev/null; }

# PostgreSQL's server binaries: the tests and `make bench` start a private server in a temporary folder
# (bench/pgserver.py); nothing is configured system-wide and no service is started.
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "installing postgresql (PostgreSQL store tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

test-deps: system-deps postgres-deps $(NODE_STAMP)
	@[ -x /usr/bin/chromium ] || { echo "installing chromium (headless browser tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

$(NODE_STAMP):
	@command -v npm >/dev/null 2>&1 || { echo "installing node and npm (browser tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	@mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error $(NPM_PACKAGES)
	@touch $@

setup: $(STAMP) system-deps

demo: setup
	$(PY) -m coltiva.demo --db $(DB)

test: setup test-deps
	$(PY) -m pytest -n 2 -p no:cacheprovider

bench: setup postgres-deps
	$(PY) -m bench

images: setup
	@mkdir -p docs/img
	@for j in journeys/*.journey; do n=$$(basename $$j .journey); \
	  $(PY) -m coltiva.cli render $$j -o docs/img/$$n.png || exit 1; done

clean:
	rm -rf $(VENV) .cache *.egg-info .pytest_cache .hypothesis out $(DB) $(DB)-wal $(DB)-shm $(DB).lock
