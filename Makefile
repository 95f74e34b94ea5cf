# Two commands for a fresh machine: `make demo` and `make test`. Everything else
# (virtual environment, Python packages, Debian's graphviz, and for the tests
# Debian's chromium, Java 17 and Apache Flink in its own .venv-flink) is set up on the way.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DB ?= demo.db

# Apache Flink (PyFlink, ~800 MiB, pins pandas<2.3, pyarrow<21, Python <=3.12) lives in its own
# environment so it never constrains the main one; Java 17 comes from Debian if `java` is missing.
FLINK_VENV ?= .venv-flink
FLINK_PY := $(FLINK_VENV)/bin/python
FLINK_STAMP := $(FLINK_VENV)/.installed
FLINK_PYTHON ?= python3

.PHONY: setup system-deps test-deps demo test test-flink flink java bench images clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

$(FLINK_STAMP): pyproject.toml
	$(FLINK_PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_PY) -m pip install -q --upgrade pip
	$(FLINK_PY) -m pip install -q -e '.[flink,test]'
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

test-deps: system-deps
	@[ -x /usr/bin/chromium ] || { echo "installing chromium (headless review-page tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

setup: $(STAMP) system-deps

demo: setup
	$(PY) -m coltiva.demo --db $(DB)

test: setup test-deps flink
	$(PY) -m pytest -n 2 -p no:cacheprovider
	$(FLINK_PY) -m pytest -p no:cacheprovider tests_flink

test-flink: flink
	$(FLINK_PY) -m pytest -p no:cacheprovider tests_flink

bench: setup flink
	$(PY) -m bench

images: setup
	@mkdir -p docs/img
	@for j in journeys/*.journey; do n=$$(basename $$j .journey); \
	  $(PY) -m coltiva.cli render $$j -o docs/img/$$n.png || exit 1; done

clean:
	rm -rf $(VENV) $(FLINK_VENV) *.egg-info .pytest_cache .hypothesis out $(DB) $(DB)-wal $(DB)-shm $(DB).lock
