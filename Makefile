# Two commands on a fresh machine: `make demo` and `make test`.
# Everything they need is created here; nothing is assumed installed by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Optional: a Python 3.10 interpreter for the Lava environment
# (otherwise `snn2hw lava install` looks for one: PATH, then pyenv).
LAVA_PYTHON310 ?=

.PHONY: setup lava lava-netx chromium demo test bench clean

setup: $(VENV)/.installed

# torch==2.13.0 first: it is the CPU build on disk; any other torch request
# would download gigabytes of CUDA wheels.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[torch,onnx,fast,dev,report,xylo,dist]"
	touch $@

lava: setup
	$(BIN)/snn2hw lava install $(if $(LAVA_PYTHON310),--python $(LAVA_PYTHON310),)

# The tests also run exported .net files through lava-dl's own netx, so the Lava
# environment gets lava-dl 0.6 (it pins torch 2.3: a CUDA build, ~4 GB, run on the CPU).
lava-netx: lava
	$(BIN)/snn2hw lava install --netx $(if $(LAVA_PYTHON310),--python $(LAVA_PYTHON310),)

demo: setup lava
	$(BIN)/python examples/digits_snn.py
	$(BIN)/snn2hw inspect examples/out/digits.nir
	$(BIN)/python examples/digits_compile.py
	$(BIN)/python examples/digits_xylo.py
	$(BIN)/snn2hw compile examples/out/digits.nir --target loihi2 -o examples/out/digits_cli
	$(BIN)/python examples/digits_ann.py
	$(BIN)/snn2hw import examples/out/digits_cnn.onnx --calibrate examples/out/digits_ann_calib.npy \
		-o examples/out/digits_cnn.nir
	$(BIN)/snn2hw import examples/out/digits_mlp.pt2 --calibrate examples/out/digits_ann_calib.npy \
		--encoding current -o examples/out/digits_mlp.nir
	$(BIN)/snn2hw import examples/out/digits_cnn.onnx --neuron sigma-delta \
		--calibrate examples/out/digits_ann_calib.npy -o examples/out/digits_cnn_sd.nir
	$(BIN)/snn2hw verify examples/out/digits_mlp.onnx --neuron sigma-delta \
		--calibrate examples/out/digits_ann_calib.npy --data examples/out/digits_ann_calib.npy \
		--device lava --against emulator --limit 10
	$(BIN)/python examples/program_image.py
	$(BIN)/snn2hw inspect examples/out/demo_program.h5
	$(BIN)/snn2hw run examples/out/demo_program.h5 --input examples/out/demo_input.npy \
		--output examples/out/emulator.npz --record spikes,u,v --device emulator
	$(BIN)/snn2hw run examples/out/demo_program.h5 --input examples/out/demo_input.npy \
		--output examples/out/lava.npz --record spikes,u,v --device lava
	$(BIN)/snn2hw verify examples/out/digits.nir --target loihi1 \
		--data examples/out/digits_test.npz --png examples/out/verify_loihi1.png \
		--report examples/out/report_loihi1
	$(BIN)/snn2hw verify examples/out/digits.nir --target loihi2 \
		--data examples/out/digits_test.npz --device lava --against emulator --limit 20

# The browser test of report.html (tests/test_report_browser.py) needs Debian's chromium:
# installed here when missing and run as root, else that test is skipped, saying so.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		>/dev/null; } || echo "chromium not installed (not root): the report browser test will be skipped"

# -n auto: one pytest worker per core (the suite is mostly single-threaded: Lava and netx
# subprocesses, one-thread training); worksteal balances the few minutes-long netx runs.
test: setup lava-netx chromium
	$(BIN)/python -m pytest -q -rs -n auto --dist worksteal

bench: setup lava
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/bench_emulator.py
	$(BIN)/python bench/bench_compile.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache examples/out
