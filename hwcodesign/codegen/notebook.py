"""The Jupyter notebook shipped beside a project's driver (`driver/notebook.ipynb`).

It opens the accelerator through the generated `driver.py`, checks it bit-exact against the
golden model's outputs in `sample.npz`, compares with onnxruntime on `model.onnx` when that is
installed, plots per-layer cycles from `report.json` and the first frame's output, measures
throughput, and ends with one machine-readable line (`HWCODESIGN_NOTEBOOK_RESULT {json}`) for
scripts and tests that execute it headlessly. It runs unchanged on a PYNQ board (backend `pynq`)
and on a PC (`HWCODESIGN_BACKEND=emulate`: the project's C simulation behind the same driver).

The notebook is plain nbformat-4 JSON built here (no nbformat dependency) and deterministic:
no timestamps, execution counts or outputs; cell ids are their positions. Every number it shows
comes from running it. The cells after the imports only use `DRIVER_DIR` (the folder holding
driver.py, sample.npz and model.onnx) and the driver's names, so other notebooks can reuse
them after their own set-up cells (`check_cells`, as examples/write_notebook.py does).
"""

from __future__ import annotations

import json
from textwrap import dedent

RESULT_MARKER = "HWCODESIGN_NOTEBOOK_RESULT"
BENCHMARK_FRAMES = 20
PLOTTED_VALUES = 64

Cell = tuple[str, str]
"""(cell type "markdown" or "code", source text)."""


def markdown(text: str) -> Cell:
    return ("markdown", dedent(text).strip("\n"))


def code(text: str) -> Cell:
    return ("code", dedent(text).strip("\n"))


def notebook_json(name: str, board_display_name: str, host: bool = False) -> str:
    """`driver/notebook.ipynb` for the project `name` built for `board_display_name`; `host`: the
    model has parts on the board's CPU, and the notebook also runs the whole model."""
    return notebook_document(intro_cells(name, board_display_name) + import_cells() + check_cells(name, host))


def intro_cells(name: str, board_display_name: str) -> list[Cell]:
    return [markdown(f"""
        # {name} on the {board_display_name}

        This notebook runs the accelerator that hwcodesign compiled from `model.onnx` for the
        {board_display_name}, and checks it:

        1. bit-exact agreement with hwcodesign's integer golden model on the sample frames in `sample.npz`;
        2. agreement with onnxruntime running `model.onnx` (at most 1 LSB per output element; skipped
           where onnxruntime is not installed, as on most PYNQ images);
        3. per-layer cycles from the compile report, and the accelerator's output next to the reference;
        4. measured throughput and latency.

        Every number below comes from running the cells: run them all (Run > Run All Cells).
        """)]


def import_cells() -> list[Cell]:
    return [
        markdown("""
            ## 1. Imports

            `driver.py` sits next to this notebook (in the project's `driver/` folder, and in the
            folder that `hwcodesign package` makes for the board), so `import driver` works with the
            notebook's folder as working directory, which is where Jupyter starts its kernel. The
            driver needs only numpy, plus `pynq` on the board.
            """),
        library_cell(),
        driver_import_cell(),
    ]


def library_cell(more_modules: tuple[str, ...] = (), first_party: tuple[str, ...] = ()) -> Cell:
    """The imports the check cells use, plus standard modules and first-party lines, isort-ordered."""
    modules = sorted({"json", "os", *more_modules})
    lines = [f"import {module}" for module in modules] + ["from pathlib import Path", "",
                                                          "import matplotlib.pyplot as plt", "import numpy as np"]
    if first_party:
        lines += ["", *sorted(first_party)]
    return code("\n".join(lines))


def driver_import_cell() -> Cell:
    """`driver` on its own: it is whatever driver.py the notebook's folder (or sys.path) holds."""
    return code("""
        import driver
        from driver import BOARD, MODEL_NAME, Accelerator

        DRIVER_DIR = Path(driver.__file__).resolve().parent
        print(f"driver: {DRIVER_DIR / 'driver.py'}")
        """)


def check_cells(name: str = "<name>", host: bool = False) -> list[Cell]:
    """Everything after the imports; needs `Accelerator`, `BOARD`, `MODEL_NAME` and `DRIVER_DIR`.
    With `host`, section 4 runs the whole model (host parts and accelerator) on the model's own
    inputs against onnxruntime on `model.onnx`."""
    model_result = '\n                "model_max_abs_vs_onnxruntime": model_max_abs,' if host else ""
    return [
        markdown(f"""
            ## 2. Open the accelerator

            `Accelerator()` picks its backend from the environment variable `HWCODESIGN_BACKEND`:

            - `pynq` (the default, what runs on the board): programs the FPGA with the bitstream
              (`{name}.bit` and its `{name}.hwh`) and moves frames through the AXI DMAs (a dataflow
              pipeline) or through DDR buffers the accelerator reads itself (a layer-sequential engine);
            - `emulate` (off the board): the same driver against an emulated board that executes the
              project's C simulation of the generated HLS code (g++, bit-exact with the hardware).
              Start Jupyter with `HWCODESIGN_BACKEND=emulate`, and with `HWCODESIGN_PROJECT=<project folder>`
              when this notebook is not inside the project (emulation needs its `hls/` sources).
            """),
        code("""
            acc = Accelerator()
            backend = getattr(acc, "backend", os.environ.get("HWCODESIGN_BACKEND", "pynq"))
            print(f"{MODEL_NAME} for {BOARD}, backend: {backend}")
            for kind, ports in (("input", acc.inputs), ("output", acc.outputs)):
                for port in ports:
                    dtype = ("int" if port.signed else "uint") + str(port.bits)
                    shape = "x".join(str(n) for n in port.shape)
                    print(f"  {kind} {port.name}: {shape} {dtype}, scale {port.scale:.6g}, zero point {port.zero_point}")
            """),
        markdown("""
            ## 3. Bit-exact check against the golden model

            `sample.npz` holds a few sample frames: `input` (floats, N x C x H x W), `input_q` (the same
            frames quantized with the input's scale and zero point; further inputs: `input_1`,
            `input_q_1`, ...) and `expected_0`, `expected_1`, ... (one per output): the integer outputs of
            hwcodesign's golden model, which the hardware must reproduce exactly. With `raw=True`,
            `run_batch` takes and returns integers (a dict by name when there are several). For a model
            with parts on the board's CPU, these are the accelerator's own ports (`run_accelerator_batch`).
            """),
        code("""
            sample = np.load(DRIVER_DIR / "sample.npz")


            def sample_frames(key):
                \"\"\"The first input's frames are `key`, the next ones `key_1`, ...: an array, or a dict by input name.\"\"\"
                arrays = [sample[key if index == 0 else f"{key}_{index}"] for index in range(len(acc.inputs))]
                return arrays[0] if len(arrays) == 1 else {port.name: a for port, a in zip(acc.inputs, arrays)}


            frames = sample_frames("input")
            frames_q = sample_frames("input_q")
            inputs_q = frames_q if isinstance(frames_q, dict) else {acc.inputs[0].name: frames_q}
            count = len(inputs_q[acc.inputs[0].name])
            expected = [sample[f"expected_{index}"] for index in range(len(acc.outputs))]


            def output_list(result):
                \"\"\"run/run_batch give an array for one output and a dict (port name -> array) for several.\"\"\"
                if isinstance(result, dict):
                    return [np.asarray(result[port.name]) for port in acc.outputs]
                return [np.asarray(result)]


            run_ports = getattr(acc, "run_accelerator_batch", acc.run_batch)  # the accelerator's ports alone
            outputs_q = output_list(run_ports(frames_q, raw=True))
            differing = 0
            for got, want in zip(outputs_q, expected):
                differing += int(np.count_nonzero(got != want)) if got.shape == want.shape else want.size
            total = sum(want.size for want in expected)
            bit_exact = differing == 0 and len(outputs_q) == len(expected)
            print(f"{count} frames, {total} output elements")
            print(f"bit-exact with the golden model: {bit_exact}")
            print(f"differing elements: {differing}")
            """),
        markdown("""
            ### The float path

            Without `raw=True`, `run_batch` quantizes float frames with the input's scale and zero point
            and returns dequantized outputs, `(q - zero_point) * scale`. Below: the driver's quantization
            of `input` gives `input_q`, and the float outputs are the dequantized integer outputs.
            """),
        code("""
            outputs_f = output_list(run_ports(frames))
            if isinstance(frames, dict):
                quantize_matches = all(np.array_equal(acc.quantize(frames[port.name], index), frames_q[port.name])
                                       for index, port in enumerate(acc.inputs))
            else:
                quantize_matches = bool(np.array_equal(acc.quantize(frames), frames_q))
            dequantize_matches = all(
                y.shape == q.shape
                and np.allclose(y, (q.astype(np.float64) - port.zero_point) * port.scale, rtol=1e-5, atol=1e-6 * port.scale)
                for port, y, q in zip(acc.outputs, outputs_f, outputs_q)
            )
            float_path_ok = quantize_matches and dequantize_matches
            print(f"quantize(input) == input_q: {quantize_matches}")
            print(f"float outputs == dequantized integer outputs: {dequantize_matches}")
            for port, y in zip(acc.outputs, outputs_f):
                flat = y.reshape(len(y), -1)
                line = f"{port.name}: {y.shape} {y.dtype}, values in [{y.min():.4g}, {y.max():.4g}]"
                if y.shape[2:] == (1, 1) and flat.shape[1] > 1:
                    line += f", argmax per frame {flat.argmax(axis=1).tolist()}"
                print(line)
            """),
        *(whole_model_cells() if host else reference_cells()),
        markdown(f"""
            ## 5. Plots

            Left: the cycles per frame of every layer as the compiler's pipeline simulation predicts
            them (`report.json`, beside this notebook in the board package or one folder up in the
            project); the slowest stage, in red, sets the frame rate. Right: the accelerator's first
            output for the first frame next to the reference (onnxruntime when it ran, else the golden
            model), dequantized (at most the first {PLOTTED_VALUES} values).
            """),
        code(f"""
            report_path = next((p for p in (DRIVER_DIR / "report.json", DRIVER_DIR.parent / "report.json") if p.is_file()), None)
            report = json.loads(report_path.read_text()) if report_path else None

            fig, (ax_cycles, ax_out) = plt.subplots(1, 2, figsize=(13, 4.5))
            if report:
                layers = report["layers"]
                cycles = [layer["cycles"] for layer in layers]
                colors = ["tab:red" if c == max(cycles) else "tab:blue" for c in cycles]
                ax_cycles.bar(range(len(layers)), cycles, color=colors)
                ax_cycles.set_xticks(range(len(layers)))
                ax_cycles.set_xticklabels([layer["name"] for layer in layers], rotation=90, fontsize=7)
                ax_cycles.set_ylabel("cycles per frame")
                board = report.get("board", {{}})
                ax_cycles.set_title(f"per-layer cycles ({{board.get('name', BOARD)}}, {{board.get('clock_mhz', 0):g}} MHz)")
            else:
                ax_cycles.set_title("report.json not found")

            port = acc.outputs[0]
            got = outputs_f[0][0].ravel()
            if reference is not None:
                ref, ref_label = reference[0][0].ravel(), "onnxruntime"
            else:
                ref, ref_label = (expected[0][0].ravel() - port.zero_point) * port.scale, "golden model"
            shown = min(got.size, {PLOTTED_VALUES})
            index = np.arange(shown)
            ax_out.bar(index - 0.2, got[:shown], 0.4, label="accelerator")
            ax_out.bar(index + 0.2, ref[:shown], 0.4, label=ref_label)
            ax_out.set_xlabel("output element (channel-major)")
            ax_out.set_title(f"output {{port.name}}, frame 0 ({{shown}} of {{got.size}} values)")
            ax_out.legend()
            fig.tight_layout()
            plt.show()
            """),
        markdown(f"""
            ## 6. Throughput and latency

            `benchmark(n)` times n frames back to back ({BENCHMARK_FRAMES} here) and one frame alone. On
            the board this measures the accelerator with its data transfers and the Python overhead; under
            emulation it measures the C simulation on this computer, not the hardware. The compiler's
            estimate for the hardware (from `report.json`) is printed beside it.
            """),
        code(f"""
            stats = acc.benchmark({BENCHMARK_FRAMES})
            print(f"{{stats['frames']}} frames in {{stats['seconds']:.3f}} s: {{stats['fps']:.1f}} fps; "
                  f"one frame alone: {{stats['latency_ms']:.3f}} ms (backend: {{backend}})")
            if "model_fps" in stats:  # a model with host parts: the whole model, and the host's share
                print(f"the whole model: {{stats['model_fps']:.1f}} fps, of which the host parts "
                      f"{{stats['host_ms_per_frame']:.3f}} ms per frame ({{stats['host_backend']}})")
            if report:
                summary = report["summary"]
                print(f"compiler estimate for the hardware: {{summary['fps']:.1f}} fps, latency {{summary['latency_ms']:.4g}} ms")
            """),
        markdown("""
            ## 7. Result

            One line for scripts and tests that run this notebook headlessly.
            """),
        code(f"""
            result = {{
                "backend": backend,
                "bit_exact": bool(bit_exact),
                "differing_elements": differing,
                "float_path_ok": bool(float_path_ok),
                "fps": float(stats["fps"]),
                "max_lsb_vs_onnxruntime": max_lsb,{model_result}
            }}
            print("{RESULT_MARKER} " + json.dumps(result, sort_keys=True))
            """),
    ]


def reference_cells() -> list[Cell]:
    """Section 4 of a model that is all accelerator: onnxruntime on `model.onnx` fed the ports' frames."""
    return [
        markdown("""
            ## 4. Compare with onnxruntime

            onnxruntime runs `model.onnx` as written, one frame at a time, on the same input integers
            (dequantized; inputs and outputs in the model's order), with graph optimizations off (they would replace the quantize/dequantize
            groups by fused integer kernels with their own rounding) and one thread. Its float output
            is quantized with the output's scale and zero point, `clip(rint(y / scale) + zero_point)`,
            and compared with the accelerator's integers: float rounding in onnxruntime allows at most
            1 LSB. PYNQ images usually have no onnxruntime; this cell then says it skips.
            """),
        reference_session_cell(),
        code("""
            max_lsb = None
            reference = None  # onnxruntime's float outputs, one array per output port
            session = reference_session()
            if session is not None:
                inputs_f = frames if isinstance(frames, dict) else {acc.inputs[0].name: frames}
                # a windowed port's integers are packed windows: onnxruntime takes the frames' own
                x_real = [port.dequantize(port.quantize_frames(inputs_f[port.name]) if port.window
                                          else inputs_q[port.name]).astype(np.float32) for port in acc.inputs]
                model_inputs = session.get_inputs()
                # one frame in each input's own rank: an MLP's (1, C) for the port's (1, C, 1, 1)
                shapes = [(1,) + x.shape[1:len(m.shape)] for m, x in zip(model_inputs, x_real)]
                runs = [session.run(None, {m.name: x[i:i + 1].reshape(shape)
                                           for m, x, shape in zip(model_inputs, x_real, shapes)}) for i in range(count)]
                reference = [np.concatenate([run[k] for run in runs]).reshape(want.shape) for k, want in enumerate(expected)]
                max_lsb = 0
                for port, y, q in zip(acc.outputs, reference, outputs_q):
                    if port.signed:
                        lo, hi = -(1 << (port.bits - 1)), (1 << (port.bits - 1)) - 1
                    else:
                        lo, hi = 0, (1 << port.bits) - 1
                    y_q = np.clip(np.rint(y.astype(np.float64) / port.scale) + port.zero_point, lo, hi).astype(np.int64)
                    lsb = int(np.abs(y_q - q.astype(np.int64)).max())
                    max_lsb = max(max_lsb, lsb)
                    equal = 100 * float(np.mean(y_q == q))
                    print(f"{port.name}: max difference {lsb} LSB, {equal:.2f}% of elements equal")
                print(f"max difference vs onnxruntime: {max_lsb} LSB (tolerance: 1)")
            """),
    ]


def reference_session_cell() -> Cell:
    """`reference_session()`: onnxruntime on `model.onnx` as the reference runs it, or None (said why)."""
    return code("""
        def reference_session():
            \"\"\"onnxruntime on model.onnx: optimizations off, one thread; None (and why) where it cannot run.\"\"\"
            try:
                import onnxruntime as ort
            except ImportError:
                print("onnxruntime is not installed here (usual on PYNQ images): skipping the comparison")
                return None
            model_path = DRIVER_DIR / "model.onnx"
            if not model_path.is_file():
                print(f"{model_path} not found: skipping the comparison")
                return None
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        """)


def whole_model_cells() -> list[Cell]:
    """Section 4 of a model with host parts: the whole model on its own inputs against onnxruntime."""
    return [
        markdown("""
            ## 4. The whole model, and onnxruntime

            The model's float parts run on this CPU (in the driver: onnxruntime where installed, else its
            numpy executor), the integer core on the accelerator: `acc.run_batch` takes the model's own
            inputs (`model_*` in `sample.npz`) and returns its own outputs, carrying any recurrent state
            from frame to frame (`acc.reset()` starts again from zeros). onnxruntime runs `model.onnx`
            the same way, frame by frame with the state fed back, optimizations off. PYNQ images usually
            have no onnxruntime; the comparison then says it skips. `max_lsb` stays the accelerator
            ports' check against onnxruntime, which this model's extra inputs and outputs do not allow.
            """),
        reference_session_cell(),
        code("""
            max_lsb = None
            reference = None
            model_inputs = {key[len("model_"):]: sample[key] for key in sample.files if key.startswith("model_")}
            acc.reset()
            model_outputs = acc.run_batch(model_inputs)
            if not isinstance(model_outputs, dict):  # one output: its array
                model_outputs = {acc.host.spec["outputs"][0]["name"]: model_outputs}
            acc.reset()
            for name, value in model_outputs.items():
                print(f"{name}: {value.shape} {value.dtype}, values in [{value.min():.4g}, {value.max():.4g}]")
            model_max_abs = None
            session = reference_session()
            if session is not None:
                state = {s["input"]: np.zeros(s["shape"], s["dtype"]) for s in acc.host.spec["state"]}
                count = len(next(iter(model_inputs.values())))
                runs = []
                for i in range(count):
                    feeds = {name: value[i:i + 1] for name, value in model_inputs.items()}
                    names = list(model_outputs) + [s["output"] for s in acc.host.spec["state"]]
                    result = dict(zip(names, session.run(names, {**feeds, **state})))
                    state = {s["input"]: result[s["output"]] for s in acc.host.spec["state"]}
                    runs.append(result)
                model_max_abs = 0.0
                for name, value in model_outputs.items():
                    ref = np.concatenate([run[name] for run in runs]).reshape(value.shape)
                    diff = float(np.abs(ref.astype(np.float64) - value).max())
                    model_max_abs = max(model_max_abs, diff)
                    print(f"{name}: max |difference| vs onnxruntime {diff:.4g} (values up to {np.abs(ref).max():.4g})")
            """),
    ]


def notebook_document(cells: list[Cell]) -> str:
    """nbformat 4.5 JSON for `cells` (Python 3 kernel), formatted as Jupyter writes it."""
    document = {
        "cells": [cell_json(index, kind, source) for index, (kind, source) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "pygments_lexer": "ipython3"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def cell_json(index: int, kind: str, source: str) -> dict[str, object]:
    lines = source.splitlines(keepends=True)
    cell: dict[str, object] = {"cell_type": kind, "id": f"cell-{index:02d}", "metadata": {}, "source": lines}
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def result_from_text(text: str) -> dict[str, object] | None:
    """The `HWCODESIGN_NOTEBOOK_RESULT` record in a notebook's printed output, if any."""
    for line in text.splitlines():
        if line.startswith(RESULT_MARKER + " "):
            return json.loads(line[len(RESULT_MARKER) + 1:])
    return None


__all__ = ["RESULT_MARKER", "check_cells", "code", "driver_import_cell", "library_cell", "markdown",
           "notebook_document", "notebook_json", "result_from_text"]
