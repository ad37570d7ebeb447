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

# The Pi extension is type-checked against Pi's own declarations (tsconfig.json): Pi and TypeScript from npm,
# pinned, into build/ when missing (build/npm/tsc is used when another checkout put it there).
PI_VERSION := 0.73.1
TS_VERSION := 5.9.3
PI_PREFIX := build/npm/pi-$(PI_VERSION)
TSC := $(firstword $(wildcard build/npm/tsc/node_modules/.bin/tsc) build/tsc/node_modules/.bin/tsc)

$(PI_PREFIX)/node_modules/@mariozechner/pi-coding-agent/package.json:
	mkdir -p $(PI_PREFIX)
	npm install --prefix $(PI_PREFIX) --no-audit --no-fund --save-exact @mariozechner/pi-coding-agent@$(PI_VERSION)

build/tsc/node_modules/.bin/tsc:
	mkdir -p build/tsc
	npm install --prefix build/tsc --no-audit --no-fund --save-exact typescript@$(TS_VERSION)

lint: $(STAMP) $(TSC) $(PI_PREFIX)/node_modules/@mariozechner/pi-coding-agent/package.json
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check pi_mesh_plugin tests bench
	$(TSC) -p tsconfig.json --noEmit --strict

typecheck: $(STAMP)
	$(PY) -m pip install --quiet mypy
	$(VENV)/bin/mypy pi_mesh_plugin

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
