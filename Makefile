# The whole set-up is two commands on a fresh machine: `make demo` and `make check` (what CI runs).
# Both create .venv and install nomadgen (editable) with its test tools on first use.
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo demo-envs test check lint format typecheck bench dev-up dev-down clean

# nomadgen, and the dev tools beside it (each its own package, not in the dockland wheel).
$(STAMP): pyproject.toml dev/jobcheck/pyproject.toml dev/standin/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
		-e dev/jobcheck -e dev/standin
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python dev/demo.py

demo-envs: $(STAMP)
	$(BIN)/python dev/demo_envs.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check nomadgen dev tests
	$(BIN)/ruff check nomadgen dev tests

format: $(STAMP)
	$(BIN)/ruff format nomadgen dev tests
	$(BIN)/ruff check --fix nomadgen dev tests

typecheck: $(STAMP)
	$(BIN)/mypy

# What CI runs (.ci/run): lint and types first (fast), then the suite, last.
check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python dev/bench.py

dev-up: $(STAMP)
	@$(BIN)/python dev/cluster.py up

dev-down: $(STAMP)
	@$(BIN)/python dev/cluster.py down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out .dev-cluster
