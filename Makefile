# Quick start:  make sample   (creates .venv, installs nar, samples with the shipped model)
#               make test     (creates .venv, installs nar + pytest, runs the tests)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nar-installed

.PHONY: sample test bench install clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

sample: $(STAMP)
	$(VENV)/bin/nar sample --prior sundae --steps 20 --size 1024 --out samples --overwrite

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(VENV)/bin/nar bench

clean-venv:
	rm -rf $(VENV)
