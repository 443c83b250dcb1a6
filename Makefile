# Every target builds its own virtualenv when missing, and `make test` installs the Debian packages the
# real-component tests need (prometheus, prometheus-pushgateway, chromium, postgresql) when they are missing: nothing
# needs installing by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The repo's Dagster instance. `make demo` and `make ui` do not use it: they keep their own in
# out/demo/dagster_home, made from .dagster_home/dagster.yaml (chargeback_assets/demo.py).
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# The dagster-webserver port of `make ui`; choose another with `make ui PORT=3001`.
PORT = 3000

.PHONY: demo test lint unit bench ui sandbox system-deps clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import chargeback_assets, dagster, pytest, hypothesis"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check chargeback_assets chargeback_assets_tests bench
	$(VENV)/bin/ruff format --check chargeback_assets chargeback_assets_tests bench

test: lint system-deps
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m chargeback_assets.demo

ui: $(STAMP)
	$(PY) -m chargeback_assets.demo ui --port $(PORT)

bench: $(STAMP)
	$(PY) -m bench

sandbox: $(STAMP)
	$(PY) -m chargeback_assets.sandbox --size small --port 8765

SYSTEM_BINARIES := prometheus promtool prometheus-pushgateway chromium

# Debian keeps PostgreSQL's server binaries off PATH, in /usr/lib/postgresql/<version>/bin.
system-deps:
	@missing=""; for binary in $(SYSTEM_BINARIES); do command -v $$binary >/dev/null || missing="$$missing $$binary"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus prometheus-pushgateway chromium postgresql; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
