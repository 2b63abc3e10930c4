# gameday: the two set-up commands are `make drill` and `make test`; both do all set-up.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTHON  ?= python3
SCENARIO ?= instance-termination
TIMING  ?= fast
WORKERS ?= 2
STAMP   := $(VENV)/.installed

.PHONY: setup drill test lint fast-tests drills report bench clean gameday

setup: $(STAMP) node_modules/.installed
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

node_modules/.installed: package.json
	@if command -v npm >/dev/null 2>&1; then npm install --no-audit --no-fund --silent && touch $@; \
	 else echo "setup: npm not found: the allure HTML report needs Node.js (apt-get install nodejs npm)"; fi

# One drill against the local sandbox (no AWS account): make drill SCENARIO=region-outage
drill: setup
	$(PY) -m pytest -m drill --scenario $(SCENARIO) --timing $(TIMING) -p no:randomly -v \
	  --alluredir reports/allure-results
	$(PY) -m gameday report --results reports/allure-results --out reports/allure-report || true

# The weekly game day (gamedays/weekly.yaml: every drill) against a fresh local sandbox; history in ~/.gameday
gameday: setup
	$(PY) -m gameday run gamedays/weekly.yaml

lint: setup
	$(VENV)/bin/ruff check src tests loadtests benchmarks scenarios experiments conftest.py
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict src/gameday/analysis src/gameday/drill src/gameday/provision src/gameday/load \
	  src/gameday/util/journal_schema.py

# The test command: lint, type-check, the harness's own tests and every drill (fast profile).
test: lint
	GAMEDAY_SKIP_SLOW=1 $(PY) -m pytest -n $(WORKERS) --dist loadgroup --timing $(TIMING) --alluredir reports/allure-results -q

report: setup
	$(PY) -m gameday report --results reports/allure-results --out reports/allure-report

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf reports/allure-results reports/allure-report reports/runs
