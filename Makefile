# Two commands for a fresh machine: `make demo` and `make test`. Everything else
# (virtual environment, Python packages, Debian's graphviz, and for the tests
# Debian's chromium, postgresql and Java 17, and Apache Flink in its own .venv-flink) is set up on the way.

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

# Apache Flink (PyFlink, ~800 MiB, pins pandas<2.3, pyarrow<21, Python <=3.12) lives in its own
# environment so it never constrains the main one; Java 17 comes from Debian if `java` is missing.
FLINK_VENV ?= .venv-flink
FLINK_PY := $(FLINK_VENV)/bin/python
comma := ,
FLINK_EXTRAS := flink,postgres,test
FLINK_STAMP := $(FLINK_VENV)/.installed-$(subst $(comma),-,$(FLINK_EXTRAS))
FLINK_PYTHON ?= python3

.PHONY: setup system-deps postgres-deps test-deps demo lint test test-flink flink java bench images clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,native]'
	touch $(STAMP)

# The engine's hot path compiled by mypyc (setup.py; engine/__init__.py falls back to the sources if absent or
# stale), rebuilt when an engine or model source changes (mypyc reads their types). A C compiler and Python's
# headers come from Debian if missing (~45 s of compiling on 2 cores).
NATIVE_LIB := engine/native__mypyc$(shell python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
$(NATIVE_LIB): $(STAMP) setup.py $(wildcard engine/*.py dsl/*.py)
	@command -v cc >/dev/null 2>&1 && $(PY) -c "import os, sys, sysconfig; \
	  sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" || { \
	  echo "installing build-essential and python3-dev (compiling the engine with mypyc)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq build-essential python3-dev >/dev/null; }
	rm -f engine/*$(suffix $@)  # new files, never rewritten in place under a running process; none left over
	$(PY) setup.py -q build_ext --inplace >/dev/null
	@# the build just matched them to their sources, but an unchanged extension keeps its old time when copied
	touch engine/*$(suffix $@)
	$(PY) -c "import engine, sys; sys.exit(engine.NATIVE_WHY)"

$(FLINK_STAMP): pyproject.toml
	$(FLINK_PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_PY) -m pip install -q --upgrade pip
	$(FLINK_PY) -m pip install -q -e '.[$(FLINK_EXTRAS)]'
	touch $(FLINK_STAMP)

java:
	@command -v java >/dev/null 2>&1 || { echo "installing Java 17 (Apache Flink)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

flink: $(FLINK_STAMP) java

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

setup: $(STAMP) $(NATIVE_LIB) system-deps

demo: setup
	$(PY) -m coltiva.demo --db $(DB)

# The main suite, and beside it (its own process, log shown at the end) the Flink environment's install
# then the Flink tests on a real local mini-cluster: the install mostly waits on downloads and the
# mini-cluster on its JVM, so side by side they cost little more than the main suite alone.
FLINK_LOG := .cache/test-flink.log

# The lint and type gate (configuration in pyproject.toml): zero errors, checked before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint setup test-deps java
	@mkdir -p .cache
	@( $(MAKE) --no-print-directory $(FLINK_STAMP) && $(FLINK_PY) -m pytest -p no:cacheprovider -q tests_flink ) \
	  > $(FLINK_LOG) 2>&1 & flink=$$!; \
	$(PY) -m pytest -n 2 -p no:cacheprovider; main=$$?; \
	wait $$flink; flink_rc=$$?; \
	echo "---- Flink tests (tests_flink/ in $(FLINK_VENV); log: $(FLINK_LOG)) ----"; tail -n 40 $(FLINK_LOG); \
	[ $$main -eq 0 ] && [ $$flink_rc -eq 0 ]

# The Flink tests alone (`make test` runs them too).
test-flink: flink postgres-deps
	$(FLINK_PY) -m pytest -p no:cacheprovider tests_flink

bench: setup postgres-deps flink
	$(PY) -m bench

images: setup
	@mkdir -p docs/img
	@for j in journeys/*.journey; do n=$$(basename $$j .journey); \
	  $(PY) -m coltiva.cli render $$j -o docs/img/$$n.png || exit 1; done

clean:
	rm -rf $(VENV) $(FLINK_VENV) .cache *.egg-info .pytest_cache .hypothesis out $(DB) $(DB)-wal $(DB)-shm $(DB).lock build engine/*.so
