# The project's verbs.  `make demo` and `make test` work on a fresh machine with Python 3.11+, make, git and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test torture bench lint typecheck clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

demo: $(STAMP)
	$(VENV)/bin/pi-mesh demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup

torture: $(STAMP)
	$(PY) -m tests.torture --full

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check pi_mesh_plugin tests bench

typecheck: $(STAMP)
	$(PY) -m pip install --quiet mypy
	$(VENV)/bin/mypy pi_mesh_plugin

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
