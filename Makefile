# `make demo` and `make test` work on a fresh machine with only Python 3.11: each sets up .venv first, installing only
# what it needs (stamps per target: `make test` after `make demo` only adds the test extras).
#
#   1. python -m venv .venv
#   2. torch 2.13.0 (CPU) with pip, which reads pip's configuration: that is where the CPU build lies on disk here.
#      A bare `torch` from PyPI would be a CUDA build of several GB. torch and its dependencies (sympy, networkx, ...)
#      compiled to bytecode on every core (compileall; `|| true`: like pip's own compile step, it skips the few test
#      files written for newer Pythons): where PYTHONDONTWRITEBYTECODE is set, nothing else would cache them, and
#      every process (each notebook's kernel, each rank) would compile sympy again (about 3 s).
#   3. the package (editable) with the target's extras, with uv (fast; fetched into .venv with pip) and torch pinned to
#      the one installed, so nothing can replace it. If uv cannot be had or fails, pip does it. INSTALLER=pip skips uv.
PYTHON ?= python3.11
TORCH ?= 2.13.0
INSTALLER ?= uv
VENV := .venv
PY := $(VENV)/bin/python
SITE = $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
SETUP_FILES := setup.cfg setup.py pyproject.toml
# The installed torch's version, e.g. 2.13.0+cpu, read without importing torch (seconds saved).
TORCH_VERSION := from importlib.metadata import version; print(version('torch'))

comma := ,
T0 := $(shell date +%s)
# A progress line with the seconds since make started.
say = @echo "[setup] $(1) ($$(( $$(date +%s) - $(T0) )) s)"

# The package with the extras $(1), next to the installed torch: uv, else pip.
define install_package
	@if [ "$(INSTALLER)" = uv ] \
	  && { $(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install --quiet --quiet uv; } \
	  && $(PY) -m uv pip install --quiet --python $(PY) --compile-bytecode -e ".[$(1)]" "torch==$(TORCH)"; then :; \
	else \
	  [ "$(INSTALLER)" = pip ] || echo "[setup] uv failed or is unavailable: installing with pip"; \
	  $(PY) -m pip install --quiet --quiet -e ".[$(1)]" "torch==$(TORCH)"; \
	fi
endef

.PHONY: test demo docs install benchmark clean

$(VENV)/.torch:
	$(call say,creating .venv)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call say,installing torch $(TORCH) (CPU))
	@$(PY) -c "$(TORCH_VERSION)" >/dev/null 2>&1 || { \
	  $(PY) -m pip install --quiet --quiet --no-compile "torch==$(TORCH)" \
	  && { $(PY) -m compileall -q -j 0 "$(SITE)" >/dev/null || true; }; }
	@echo "[setup] torch $$($(PY) -c "$(TORCH_VERSION)")"
	@touch $@

$(VENV)/.demo: $(VENV)/.torch $(SETUP_FILES)
	$(call say,installing the package and the demo's extras)
	$(call install_package,demo)
	@touch $@
	$(call say,done)

$(VENV)/.test: $(VENV)/.torch $(SETUP_FILES)
	$(call say,installing the package and the test extras)
	$(call install_package,demo$(comma)test)
	@touch $(VENV)/.demo $@
	$(call say,done)

$(VENV)/.benchmark: $(VENV)/.torch $(SETUP_FILES)
	$(call say,installing the package and the benchmarks' extras)
	$(call install_package,benchmark)
	@touch $@
	$(call say,done)

$(VENV)/.docs: $(VENV)/.torch $(SETUP_FILES)
	$(call say,installing the package and the docs extras)
	$(call install_package,docs)
	@touch $@
	$(call say,done)

install: $(VENV)/.test

test: $(VENV)/.test
	LOR_NOTEBOOK_QUICK=1 $(PY) -m pytest -q tests lightning_optim_recipes
	LOR_LIGHTNING=lightning $(PY) -m pytest -q -m "trainer and not slow" tests
	$(PY) -m mypy lightning_optim_recipes tests/typing

demo: $(VENV)/.demo
	$(PY) examples/demo.py

# The site, into docs/_build/html: every page re-read (-E) and the notebooks executed, so it shows the code as it is;
# any warning or unresolved reference fails it (-W, nitpicky in docs/conf.py). See docs/README.md.
docs: $(VENV)/.docs
	$(call say,building the docs (executes the notebooks))
	@$(PY) -m sphinx -q -E -W --keep-going -b html docs docs/_build/html
	$(call say,done: docs/_build/html/index.html)

benchmark: $(VENV)/.benchmark
	$(PY) benchmarks/callbacks_overhead.py
	$(PY) benchmarks/alternating_overhead.py
	$(PY) benchmarks/param_groups_scale.py
	$(PY) benchmarks/hybrid_step.py
	$(PY) benchmarks/schedule_free_overhead.py
	$(PY) benchmarks/wsd_overhead.py
	$(PY) benchmarks/replay_speed.py
	$(PY) benchmarks/sharded_muon.py

clean:
	rm -rf $(VENV) demo_out *.egg-info .mypy_cache docs/_build docs/_generated docs/api docs/notebooks
