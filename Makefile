# `make test` and `make demo` work on a fresh machine with only Python 3.11: each sets up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo install benchmark clean

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q --nbmake tests lightning_optim_recipes notebooks
	LOR_LIGHTNING=lightning $(PY) -m pytest -q -m "trainer and not slow" tests

demo: $(STAMP)
	$(PY) examples/demo.py

benchmark: $(STAMP)
	$(PY) benchmarks/callbacks_overhead.py
	$(PY) benchmarks/alternating_overhead.py
	$(PY) benchmarks/param_groups_scale.py

clean:
	rm -rf $(VENV) demo_out *.egg-info
