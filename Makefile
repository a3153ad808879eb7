# tinycc: `make demo` compiles and runs the bundled model; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test venv clean

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install $(PIP_FLAGS) --upgrade pip
	# torch is pinned to the CPU build that is on this platform; unpinned it pulls GBs of CUDA wheels
	$(VPY) -m pip install $(PIP_FLAGS) "torch==2.13.0"
	$(VPY) -m pip install $(PIP_FLAGS) -e ".[test]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VPY) examples/demo.py

test: $(VENV)/.installed
	$(VPY) -m pytest -q -rs -n 2 --dist loadfile tests

clean:
	rm -rf $(VENV) demo_out .pytest_cache
