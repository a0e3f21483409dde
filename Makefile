# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
REFVENV ?= .refvenv
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast bench refenv lint clean

## install: .venv with torch 2.13.0 (CPU, local file), the package + test extras, and the
## published harmonizer weights (opensr-degradation==1.0.1, --no-deps: only its files are read)
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[torch,test]"
	$(PY) -m pip install --quiet --no-deps "opensr-degradation==1.0.1"
	touch $@

## demo: degrade the embedded example with every method -> demo-output/ (Zarr + PNG), offline
demo: install
	$(VENV)/bin/sen2naip-xr demo --out demo-output

## test: everything the tests need is installed and started by this target
test: install
	bash scripts/install-test-services.sh $(PY)
	$(PY) -m pytest

test-fast: install
	bash scripts/install-test-services.sh $(PY)
	$(PY) -m pytest -m "not slow"

## refenv: the reference implementation's venv (torch 2.14.1 + torchvision 0.29.1 from local disk)
refenv: $(REFVENV)/.installed

$(REFVENV)/.installed:
	test -x $(REFVENV)/bin/python || $(PYTHON) -m venv $(REFVENV)
	$(REFVENV)/bin/pip install --quiet "torch==2.14.1" "torchvision==0.29.1" numpy scipy scikit-image \
		pydantic einops pandas datasets tqdm "setuptools<81"
	$(REFVENV)/bin/pip install --quiet --no-deps "opensr-degradation==1.0.1"
	touch $@

## bench: the benchmarks of BENCHMARKS.md (degradation beside the reference, loading, blank check, dataset
## build with its kernel floor, GPU: on CPU at small sizes when there is no CUDA device)
bench: install refenv
	$(PY) benchmarks/degradation.py --reference-python $(REFVENV)/bin/python
	$(PY) benchmarks/load.py
	$(PY) benchmarks/blank.py
	$(PY) benchmarks/build.py
	$(PY) benchmarks/gpu.py

lint: install
	$(VENV)/bin/ruff check sen2naip_xr tests benchmarks examples
	$(VENV)/bin/mypy sen2naip_xr

clean:
	rm -rf demo-output .pytest_cache
