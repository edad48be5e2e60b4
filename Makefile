# One entry point for every job. Each target installs what it needs first, so `make demo` and
# `make test` work on a fresh machine by themselves.
PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODELS := build/examples

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

$(MODELS)/resnet8_qdq_w8a8.onnx: examples/build_models.py $(STAMP)
	$(PY) examples/build_models.py --out $(MODELS)

demo: install $(MODELS)/resnet8_qdq_w8a8.onnx
	$(VENV)/bin/hwcodesign boards
	$(VENV)/bin/hwcodesign inspect $(MODELS)/resnet8_qdq_w8a8.onnx
	$(VENV)/bin/hwcodesign simulate $(MODELS)/resnet8_qdq_w8a8.onnx --board ultra96v2 -o build/reports/resnet8-ultra96v2

bench: install
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/mapper_resnet50.py
	$(PY) benchmarks/mapper_finn_cnv.py

lint: install
	$(VENV)/bin/ruff check hwcodesign tests examples benchmarks

clean:
	rm -rf build .pytest_cache
