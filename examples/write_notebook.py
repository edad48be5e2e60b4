"""Writes examples/resnet8_pynq.ipynb: compile ResNet-8 for the Ultra96-V2, then the project notebook.

The notebook is generated rather than edited by hand so that its checks stay the very cells every
compiled project's `driver/notebook.ipynb` has (hwcodesign/codegen/notebook.py); only the first
cells differ: they compile the model (unless the project is already there) and import the
project's driver in emulation mode. tests/runtime/test_notebook.py fails when the file is stale.

    .venv/bin/python examples/write_notebook.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwcodesign.codegen.notebook import (
    Cell,
    check_cells,
    code,
    driver_import_cell,
    library_cell,
    markdown,
    notebook_document,
)

NOTEBOOK = Path(__file__).resolve().parent / "resnet8_pynq.ipynb"
PROJECT_NAME = "resnet8_qdq_w8a8"


def example_cells() -> list[Cell]:
    return [
        markdown("""
            # ResNet-8 on a PYNQ board (Ultra96-V2), from a notebook

            This notebook compiles the example ResNet-8 (8-bit weights and activations, QDQ format) into
            an accelerator project for the Ultra96-V2 and runs it through the project's PYNQ driver.
            Here the driver uses its emulated board, which executes the C simulation of the generated
            HLS code (bit-exact with the hardware), so this runs on any PC with hwcodesign and g++.

            On a real board: build the bitstream (`make -C build/resnet8_ultra96v2 bitstream`, needs
            Vivado), run `hwcodesign package build/resnet8_ultra96v2`, copy the package folder to the
            board and run its `notebook.ipynb`, the same checks as below with the `pynq` backend
            (steps in the package's README.md).

            Model and project paths: `HWCODESIGN_EXAMPLE_MODEL` (default
            `build/examples/resnet8_qdq_w8a8.onnx`, made by `make demo`) and `HWCODESIGN_EXAMPLE_PROJECT`
            (default `build/resnet8_ultra96v2`), relative to the repository.
            """),
        markdown("""
            ## 0. Compile (once)

            `compile_model` runs the whole flow: import and optimize the ONNX model, choose every layer's
            parallelism for the board with an integer program, simulate the dataflow pipeline, and write
            the project (HLS C++, Vivado scripts, report, and `driver/`). A project already compiled from
            the same model is reused.
            """),
        library_cell(("sys",), ("from hwcodesign.flows.compile import compile_model",)),
        code("""
            ROOT = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "examples" / "build_models.py").is_file()),
                        Path.cwd())
            MODEL = Path(os.environ.get("HWCODESIGN_EXAMPLE_MODEL", ROOT / "build" / "examples" / "resnet8_qdq_w8a8.onnx"))
            PROJECT = Path(os.environ.get("HWCODESIGN_EXAMPLE_PROJECT", ROOT / "build" / "resnet8_ultra96v2"))
            if not MODEL.is_file():
                raise FileNotFoundError(f"{MODEL} not found: run `make demo` (or examples/build_models.py) first")

            meta_path = PROJECT / "project.json"
            compiled = meta_path.is_file() and (PROJECT / "driver" / "driver.py").is_file()
            if compiled and json.loads(meta_path.read_text()).get("model") == MODEL.name:
                print(f"using the project compiled before: {PROJECT}")
            else:
                result = compile_model(MODEL, "ultra96v2", PROJECT)
                summary = result.report["summary"]
                print(f"compiled {MODEL.name} into {PROJECT}: {len(result.graph)} layers, "
                      f"estimated {summary['fps']:.0f} fps at {result.mapping.board.clock_mhz:g} MHz")
            """),
        markdown("""
            ## 1. The project's driver, emulated

            `PROJECT/driver/driver.py` is the standalone driver the board uses too. `HWCODESIGN_BACKEND=emulate`
            (set here unless already set) makes it drive the emulated board; it finds the project's C++
            sources one folder above the driver.
            """),
        code("""
            os.environ.setdefault("HWCODESIGN_BACKEND", "emulate")
            sys.path.insert(0, str(PROJECT / "driver"))
            """),
        driver_import_cell(),
        *check_cells(PROJECT_NAME),
    ]


def notebook_text() -> str:
    return notebook_document(example_cells())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=NOTEBOOK, help=f"where to write (default {NOTEBOOK})")
    args = parser.parse_args()
    args.out.write_text(notebook_text())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
