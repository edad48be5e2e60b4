# One entry point for every job. Each target installs what it needs first, so `make demo` and
# `make test` work on a fresh machine by themselves.
PYTHON3 ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODELS := build/examples

.PHONY: install tools xilinx-headers test fuzz demo eye-tracking dybit bench lint dist clean

install: $(STAMP) tools

# C simulation needs g++; the generated-Tcl tests need tclsh. Both come from Debian packages.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
tools:
	@missing=""; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	command -v tclsh >/dev/null 2>&1 || missing="$$missing tcl"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

# constraints.txt keeps torch (and anything that would pull it) to the CPU build.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test,dev]"
	touch $(STAMP)

# Xilinx's own ap_int.h/hls_stream.h (from the pinned hls4ml wheel, only its ap_types/ folder) into
# build/xilinx_headers/ap_types: the C simulation is also tested bit-exact against them.
xilinx-headers: $(STAMP)
	$(PY) tests/support/xilinx_headers.py

# One worker per core, each test file on one worker (its module fixtures, such as a file's C-simulation
# builds, are made once); the g++ builds inside a worker share the cores (tests/support/codegen.py). The
# 20 slowest tests are listed at the end, to keep the suite fast.
test: install xilinx-headers
	$(PY) -m pytest -q -n auto --dist loadfile --durations=20

# Hostile and careless input across every command (tests/fuzz/run_fuzz.py): FUZZ_CASES seeded cases
# over the example and hand-built models; fails on any traceback, signal, wrong success, data loss,
# onnxruntime disagreement, timeout or unclear message. `make test` runs a bounded sample of it.
FUZZ_CASES ?= 1000
FUZZ_SEED ?= 0
fuzz: install
	$(PY) tests/fuzz/run_fuzz.py --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --examples

$(MODELS)/resnet8_qdq_w8a8.onnx: examples/build_models.py hwcodesign/quantize.py $(STAMP)
	$(PY) examples/build_models.py --out $(MODELS)

$(MODELS)/codenet/codenet_w4a8.onnx: examples/codenet/build.py examples/codenet/model.py hwcodesign/quantize.py $(STAMP)
	$(PY) examples/codenet/build.py --out $(MODELS)/codenet

# CoDeNet's configurations as the paper runs them (examples/codenet/paper.py): a and b at 256x256, c at 512x512
$(MODELS)/codenet/codenet_%_w4a8.onnx: examples/codenet/paper.py examples/codenet/model.py examples/codenet/build.py hwcodesign/quantize.py $(STAMP)
	$(PY) examples/codenet/paper.py --config $* --out $(MODELS)/codenet

EYE := $(MODELS)/event_eye_tracking
$(EYE)/eye_tracker_w8a8.onnx: $(wildcard examples/event_eye_tracking/*.py) $(STAMP)
	$(PY) examples/event_eye_tracking/build.py --out $(EYE)

# The sparse eye tracker: sized for the sample frames' densities on the ZCU102 (ESDA's board, at the
# 187.48 MHz ESDA's build achieved),
# then 600 synthetic event frames through its PYNQ driver on the emulated board, the GRU head on the host
# with its hidden state carried frame to frame (plot: build/eye_tracker_zcu102_track.png).
eye-tracking: install $(EYE)/eye_tracker_w8a8.onnx
	$(VENV)/bin/hwcodesign compile $(EYE)/eye_tracker_w8a8.onnx --board zcu102 --clock 187.48 \
		--inputs $(EYE)/sample_frames.npy -o build/eye_tracker_zcu102
	$(PY) examples/event_eye_tracking/track.py build/eye_tracker_zcu102

# DyBit mixed precision: per-layer formats and foldings of ResNet-8 for the Ultra96-V2 in one ILP
# (Pareto front in build/examples/dybit/search/report.html), the mix compiled and C-simulated.
dybit: install $(MODELS)/resnet8_qdq_w8a8.onnx
	$(PY) examples/dybit/run.py --model $(MODELS)/resnet8_qdq_w8a8.onnx --out $(MODELS)/dybit

# ResNet-8 fits the Ultra96-V2 as a dataflow pipeline; CoDeNet (configuration a, at CoDeNet's 250 MHz,
# its first layer on the host) does not, so `compile` (architecture auto) builds it as the
# layer-sequential engine, whose testbench runs next.
demo: install $(MODELS)/resnet8_qdq_w8a8.onnx $(MODELS)/codenet/codenet_a_w4a8.onnx
	$(VENV)/bin/hwcodesign boards
	$(VENV)/bin/hwcodesign inspect $(MODELS)/resnet8_qdq_w8a8.onnx
	$(VENV)/bin/hwcodesign compile $(MODELS)/resnet8_qdq_w8a8.onnx --board ultra96v2 -o build/resnet8_ultra96v2
	$(VENV)/bin/hwcodesign csim build/resnet8_ultra96v2 $(MODELS)/samples.npy --model $(MODELS)/resnet8_qdq_w8a8.onnx
	$(VENV)/bin/hwcodesign compile $(MODELS)/codenet/codenet_a_w4a8.onnx --board ultra96v2 --clock 250 -o build/codenet_ultra96v2
	$(MAKE) -C build/codenet_ultra96v2 csim
	$(MAKE) eye-tracking
	$(MAKE) dybit

bench: install
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/mapper_resnet50.py
	$(PY) benchmarks/mapper_finn_cnv.py
	$(PY) benchmarks/finn_targets.py
	$(PY) benchmarks/dpu_targets.py
	$(PY) benchmarks/dpu_csim.py
	$(PY) benchmarks/csim_speed.py
	$(PY) benchmarks/golden_speed.py
	$(PY) benchmarks/compile_resnet18.py
	$(MAKE) $(MODELS)/codenet/codenet_a_w4a8.onnx $(MODELS)/codenet/codenet_b_w4a8.onnx $(MODELS)/codenet/codenet_c_w4a8.onnx
	$(PY) benchmarks/codenet_detector.py
	$(PY) benchmarks/sparse_eye_tracking.py
	$(PY) benchmarks/host_parts.py
	$(PY) benchmarks/torchvision_matrix.py
	$(PY) benchmarks/dybit_mixed_precision.py

# ruff, and the import contracts of .importlinter: the package's layers, top to bottom, without cycles.
lint: install
	$(VENV)/bin/ruff check hwcodesign tests examples benchmarks
	$(VENV)/bin/lint-imports

# The sdist and the wheel built from it, for `pip install dist/hwcodesign-*.whl` anywhere (README).
dist: install
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .

clean:
	rm -rf build dist .pytest_cache
