# svduty: two commands on a fresh clone: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= ../shared

.PHONY: install test demo lint bench lock clean

$(BIN)/svduty: pyproject.toml requirements.lock
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is needed (set PY=python3.x)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/svduty

test: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/pytest -q

demo: install
	$(BIN)/svduty demo

lint: install
	$(BIN)/ruff check src tests bench scripts

bench: install
	$(BIN)/python bench/ingest.py --shared $(SHARED)

lock:
	$(BIN)/pip freeze --exclude-editable | sed -E "s/^([A-Za-z0-9_.-]+) @ file:.*-([0-9][^-]*)-cp.*/\1==\2/" | sed '1i # Pinned, fully resolved dependency set (pip freeze of a working install). Regenerate with: make lock' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
