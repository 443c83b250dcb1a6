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

# The FOCUS validator's own virtualenv: focus-validator 2.x (FOCUS 1.2) needs Python >= 3.12, and its
# numpy<2 has wheels up to 3.12 only, so a Python 3.12 the machine has is used (on PATH or pyenv's); without
# one, uv installs a pinned CPython 3.12.
FOCUS_VENV := .focus-venv
FOCUS_STAMP := $(FOCUS_VENV)/.installed
FOCUS_PYTHON ?= $(firstword $(wildcard /usr/bin/python3.12 /usr/local/bin/python3.12 \
	$(HOME)/.pyenv/versions/3.12*/bin/python3.12))
UV_PYTHON_VERSION := 3.12.12

.PHONY: demo test lint unit bench ui sandbox system-deps clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import chargeback_assets, dagster, pytest, hypothesis"
	touch $(STAMP)

$(FOCUS_STAMP): focus-validator-requirements.txt | $(STAMP)
	@python="$(FOCUS_PYTHON)"; \
	if [ -z "$$python" ]; then \
		echo "no Python >= 3.12 found: installing CPython $(UV_PYTHON_VERSION) with uv for the FOCUS validator"; \
		$(PY) -m pip install --quiet --disable-pip-version-check uv==0.9.7 2>&1 | grep -v "is ignored"; \
		$(VENV)/bin/uv python install $(UV_PYTHON_VERSION) && python=$$($(VENV)/bin/uv python find $(UV_PYTHON_VERSION)); \
	fi; \
	test -x $(FOCUS_VENV)/bin/python || "$$python" -m venv $(FOCUS_VENV)
	$(FOCUS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r focus-validator-requirements.txt 2>&1 | grep -v "is ignored" || true
	$(FOCUS_VENV)/bin/python -c "import focus_validator.validator"  # not --help: it logs into the working directory
	touch $(FOCUS_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check chargeback_assets chargeback_assets_tests bench
	$(VENV)/bin/ruff format --check chargeback_assets chargeback_assets_tests bench

test: lint system-deps $(FOCUS_STAMP)
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
	rm -rf $(VENV) $(FOCUS_VENV) .pytest_cache .ruff_cache build *.egg-info
