# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
            $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; \
          done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= prep-sheets

.PHONY: demo test smoke lint format bench clean venv imports

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "leadprep needs Python 3.11 or newer on PATH (python3.11, python3.12, python3)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[pdf,dev]'
	@touch $(STAMP)

# The demo writes the printable PDFs too where WeasyPrint can load (it needs the Pango library).
demo: $(STAMP)
	@formats=html,md,pdf; \
	$(BIN)/python -c 'import weasyprint' >/dev/null 2>&1 || { formats=html,md; \
	  echo "note: WeasyPrint cannot load here (the Pango library?): no PDFs, HTML and Markdown only."; }; \
	echo "$(BIN)/leadprep prep --demo --out $(OUT) --format $$formats"; \
	$(BIN)/leadprep prep --demo --out $(OUT) --format $$formats

# On every core (pytest-xdist); `pytest -m "not slow"` skips the few long ones while you work.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

# The wheel installed with its dependencies (no dev extra) in a clean virtualenv, every command
# run once against local fakes: what a plain `pip install` gives a user (tests/smoke.py).
smoke: $(STAMP)
	$(BIN)/python -m tests.smoke

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.state
	$(BIN)/python -m bench.history
	$(BIN)/python -m bench.public
	$(BIN)/python -m bench.conversation
	$(BIN)/python -m bench.writeback
	$(BIN)/python -m bench.serve

clean:
	rm -rf $(VENV) $(OUT) dist build .pytest_cache .ruff_cache

# The import graph by layer and every import that runs upward (docs/architecture.md).
imports: $(STAMP)
	$(BIN)/python -m tests.import_graph
