# Two commands do all set-up on a fresh machine: `make fit` and `make test`.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
CONFIG ?= configs/default.yaml
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install fit test test-slow tensorboard lint clean

# Re-install only when the venv is new or the package metadata / pins changed.
$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

fit: $(STAMP)
	$(BIN)/python -m lightning_lstm fit --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

# The slow tier; no test marked slow (pytest exit 5) is not a failure here, unlike in `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q || test $$? -eq 5

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir runs

lint: $(STAMP)
	$(BIN)/ruff check lightning_lstm tests scripts
	$(BIN)/ruff format --check lightning_lstm tests scripts

clean:
	rm -rf runs lightning_logs .pytest_cache
