# tinycc: `make demo` compiles and runs the bundled model; `make test` runs the test suite.
# Two environments in one venv, each behind its stamp: demo installs tinycc alone (numpy, onnx,
# jinja2, networkx: no torch); test adds the test extra (torch, onnxruntime, pytest, ...).
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test venv venv-test clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install $(PIP_FLAGS) --upgrade pip
	touch $@

# tinycc and its run-time dependencies only: what `make demo` needs.
$(VENV)/.installed-demo: pyproject.toml setup.py $(VENV)/.created
	$(VPY) -m pip install $(PIP_FLAGS) -e .
	touch $@

# The test extra on top. torch is pinned to the CPU build that is on this platform; unpinned it
# pulls GBs of CUDA wheels.
$(VENV)/.installed-test: pyproject.toml setup.py $(VENV)/.installed-demo
	$(VPY) -m pip install $(PIP_FLAGS) "torch==2.13.0"
	$(VPY) -m pip install $(PIP_FLAGS) -e ".[test]"
	touch $@

venv: $(VENV)/.installed-demo

venv-test: $(VENV)/.installed-test

demo: $(VENV)/.installed-demo
	$(VPY) examples/demo.py

test: $(VENV)/.installed-test
	$(VPY) -m pytest -q -rs -n 2 --dist loadfile tests

clean:
	rm -rf $(VENV) demo_out .pytest_cache
