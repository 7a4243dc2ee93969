# SignalsLoop: two commands do everything on a fresh machine.
#   make demo   runs the whole system locally (embedded PostgreSQL) and shows the agents working
#   make test   installs what is needed and runs the tests
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The exact versions the tests passed with (pyproject.toml + its dev extra),
# installed first; the project itself then goes in without resolving anything.
LOCK := requirements.lock
UV_VERSION := 0.13.8

.PHONY: install lock test demo dev bench bench-history bench-quality lint package deploy clean

$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PY) >/dev/null 2>&1 || { echo "$(PY) not found: install Python 3.11"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	@$(BIN)/python -m pip check >/dev/null 2>&1 || { $(BIN)/python -m pip check; \
		echo "pyproject.toml needs what $(LOCK) does not pin: run make lock"; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# Re-resolve pyproject.toml (with the dev extra) into $(LOCK) for Python 3.11 on
# every platform. Versions already pinned stay unless they no longer fit;
# `make lock UPGRADE=1` moves everything to the newest that fits.
lock:
	@command -v $(PY) >/dev/null 2>&1 || { echo "$(PY) not found: install Python 3.11"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	@if [ -f $(LOCK) ] && grep -qE '^(<<<<<<<|=======|>>>>>>>)' $(LOCK); then \
		echo "$(LOCK) has merge conflict markers: resolving from scratch"; rm -f $(LOCK); fi
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --native-tls --quiet \
		--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) -o $(LOCK)

test: $(STAMP)
	$(BIN)/pytest -q

demo: $(STAMP)
	@$(BIN)/signalsloop demo

dev: $(STAMP)
	$(BIN)/signalsloop dev

bench: $(STAMP)
	@$(BIN)/signalsloop bench
	@$(BIN)/signalsloop bench --dashboard

# The hot path on top of 1,000,000 historical events (several minutes; see docs/lifecycle.md).
bench-history: $(STAMP)
	@$(BIN)/signalsloop bench --history $(or $(HISTORY),1000000)

bench-quality: $(STAMP)
	@$(BIN)/python -c "import sklearn" 2>/dev/null || $(BIN)/python -m pip install -q 'scikit-learn>=1.4'  # the train extra
	@$(BIN)/python -m signalsloop.benchmarks.quality

lint: $(STAMP)
	$(BIN)/ruff check shared signalsloop functions tests
	$(BIN)/mypy shared signalsloop functions

package: $(STAMP)
	$(BIN)/python -m signalsloop.release.package $(AGENTS)

deploy: $(STAMP)
	@test -n "$(AGENT)" || { echo "usage: make deploy AGENT=<name> [REGION=europe-west1] [PROJECT=<id>] [DRY_RUN=1] [DASHBOARD_DIRECT=1]"; exit 2; }
	$(BIN)/python -m signalsloop.release.deploy $(AGENT) --rebuild $(if $(REGION),--region $(REGION)) $(if $(PROJECT),--project $(PROJECT)) $(if $(DRY_RUN),--dry-run) $(if $(DASHBOARD_DIRECT),--direct)

clean:
	rm -rf $(VENV) build .signalsloop
