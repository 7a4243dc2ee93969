# SignalsLoop: two commands do everything on a fresh machine.
#   make demo   runs the whole system locally (embedded PostgreSQL) and shows the agents working
#   make test   installs what is needed and runs the tests
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo dev bench bench-quality lint package deploy clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "$(PY) not found: install Python 3.11"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest -q

demo: $(STAMP)
	@$(BIN)/signalsloop demo

dev: $(STAMP)
	$(BIN)/signalsloop dev

bench: $(STAMP)
	@$(BIN)/signalsloop bench

bench-quality: $(STAMP)
	@$(BIN)/python -c "import sklearn" 2>/dev/null || $(BIN)/python -m pip install -q -e '.[dev,train]'
	@$(BIN)/python -m signalsloop.benchmarks.quality

lint: $(STAMP)
	$(BIN)/ruff check shared signalsloop functions tests
	$(BIN)/mypy shared signalsloop functions

package: $(STAMP)
	$(BIN)/python -m signalsloop.release.package $(AGENTS)

deploy: $(STAMP)
	@test -n "$(AGENT)" || { echo "usage: make deploy AGENT=<name> [REGION=europe-west1] [PROJECT=<id>] [DRY_RUN=1]"; exit 2; }
	$(BIN)/python -m signalsloop.release.deploy $(AGENT) --rebuild $(if $(REGION),--region $(REGION)) $(if $(PROJECT),--project $(PROJECT)) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) build .signalsloop
