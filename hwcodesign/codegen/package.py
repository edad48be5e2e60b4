"""`hwcodesign package`: the folder to copy onto a PYNQ board.

A compiled project holds everything for the board, scattered: the bitstream and hardware handoff
in `output/` (after `make bitstream`), the driver, its notebook, sample frames and the source
model in `driver/`, the report and the port metadata at the root. The package gathers them flat
into one folder, with a README giving the board-side steps:

```
<project>/pynq_package/          (default; -o elsewhere)
  <name>.bit  <name>.hwh         when the bitstream is built (else: a warning; emulation only)
  driver.py  notebook.ipynb  sample.npz  model.onnx
  report.json  project.json  README.md
<project>/<name>.zip             with --zip: the same files under <name>/
```

The default place inside the project keeps the emulated backend working from the package as it
is (the driver finds the project's `hls/` sources one folder up); a package copied elsewhere
needs `HWCODESIGN_PROJECT` for emulation, and nothing on the board. The folder is staged and
swapped into place like a project (a failed package leaves the previous one intact); `-o`, and
the zip beside it, replace only a package this command wrote (`outputs.check_destination`). The
same inputs give byte-identical files, zip included.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

from hwcodesign import __version__
from hwcodesign.boards import load_board
from hwcodesign.codegen.host_parts import HOST_DRIVER_FILES
from hwcodesign.codegen.notebook import notebook_json
from hwcodesign.codegen.project import Project, ProjectError
from hwcodesign.codegen.project_format import PROJECT_FILE
from hwcodesign.errors import BoardError
from hwcodesign.outputs import (
    MANIFEST_FILE,
    PACKAGE_KIND,
    Warn,
    check_destination,
    is_package_zip,
    manifest_text,
    print_warning,
    write_atomically,
    write_file_atomically,
)

DEFAULT_FOLDER = "pynq_package"
# what running the driver and its notebook in the package folder leaves there (still the tool's)
PACKAGE_PRODUCTS = ("__pycache__", ".ipynb_checkpoints")
DRIVER_FILES = ("driver.py", "sample.npz")
# model.onnx is absent when emit_project was called without model_path; params.bin (the
# engine's program) exists only in layer-sequential engine projects; the host parts
# (`codegen/host_parts.py`) only for a model with parts on the board's CPU
OPTIONAL_DRIVER_FILES = ("model.onnx", "params.bin", *HOST_DRIVER_FILES)
ROOT_FILES = ("report.json", PROJECT_FILE)
BOARD_HOME = "/home/xilinx/jupyter_notebooks"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PackageError(ProjectError):
    """The project cannot be packaged (no driver yet, a half-built bitstream, a bad destination)."""


def default_package_dir(project_dir: str | os.PathLike[str]) -> Path:
    return Path(project_dir) / DEFAULT_FOLDER


def package_project(project_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None,
                    zip_file: bool = False, *, warn: Warn = print_warning) -> Path:
    """Gather a compiled project's board files into `out_dir` (default `<project>/pynq_package`).

    Returns the package folder. Without a built bitstream (`output/<name>.bit` and `.hwh`) it
    still packages, and calls `warn` with what to run first. With `zip_file`, also writes
    `<name>.zip` (the files under `<name>/`) beside the folder.
    """
    project = Project(project_dir)
    root = project.root.resolve()
    name = project.name
    out = check_destination(out_dir if out_dir is not None else default_package_dir(root), PACKAGE_KIND,
                            inputs=[root], warn=warn)
    if zip_file:
        check_zip_destination(out.parent / f"{name}.zip")
    files = collect_files(project, warn)
    write_atomically(out, files, kind=PACKAGE_KIND, products=PACKAGE_PRODUCTS, warn=warn)
    if zip_file:
        manifest = manifest_text(PACKAGE_KIND, files, PACKAGE_PRODUCTS)
        write_zip(out.parent / f"{name}.zip", name, {**files, MANIFEST_FILE: manifest})
    return out


def check_zip_destination(path: Path) -> None:
    """`<name>.zip` beside the package may replace only a package zip this command wrote."""
    if (path.exists() or path.is_symlink()) and not (path.is_file() and is_package_zip(path)):
        raise PackageError(f"output file {path} exists and is not a package zip hwcodesign wrote; "
                           "move it away or choose another -o")


def collect_files(project: Project, warn: Warn) -> dict[str, str | bytes]:
    name = project.name
    root = project.root
    driver_dir = root / "driver"
    missing = [f"driver/{file}" for file in DRIVER_FILES if not (driver_dir / file).is_file()]
    if missing:
        raise PackageError(
            f"{root} has no {', '.join(missing)}: it was compiled by an hwcodesign without the PYNQ driver; "
            f"compile the model again"
        )
    files: dict[str, str | bytes] = {file: (driver_dir / file).read_bytes() for file in DRIVER_FILES}
    for file in OPTIONAL_DRIVER_FILES:
        if (driver_dir / file).is_file():
            files[file] = (driver_dir / file).read_bytes()
    board_name, display_name, pynq_image = board_names(str(project.meta.get("board", "")))
    notebook = driver_dir / "notebook.ipynb"
    files["notebook.ipynb"] = clean_notebook(notebook) if notebook.is_file() else notebook_json(name, display_name, project.host_spec is not None)
    for file in ROOT_FILES:
        if (root / file).is_file():
            files[file] = (root / file).read_bytes()
    bitstream = [root / "output" / f"{name}.{suffix}" for suffix in ("bit", "hwh")]
    present = [path for path in bitstream if path.is_file()]
    if len(present) == 1:
        absent = next(path for path in bitstream if not path.is_file())
        raise PackageError(f"{present[0]} exists but {absent} does not: the bitstream build is incomplete; "
                           f"run `make -C {root} bitstream` again")
    built = len(present) == 2
    if built:
        for path in bitstream:
            files[path.name] = path.read_bytes()
    else:
        warn(f"no bitstream in {root / 'output'} yet: run `make -C {root} bitstream` (Vivado) first and "
             f"package again; until then the package runs only in emulation (HWCODESIGN_BACKEND=emulate)")
    files["README.md"] = readme(project, board_name, display_name, pynq_image, built)
    return files


def clean_notebook(path: Path) -> str:
    """The project's notebook (with any edits) without outputs: the board must show its own results."""
    try:
        document = json.loads(path.read_text())
        for cell in document["cells"]:
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PackageError(f"{path} is not a readable notebook ({error}); delete it to package a fresh one") from None
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def board_names(board: str) -> tuple[str, str, str]:
    """(name, display name, PYNQ image) of a project's board; a board file no longer present degrades."""
    try:
        found = load_board(board)
    except BoardError:
        return board, board or "board", "a PYNQ image for the board (see pynq.io/boards)"
    return found.name, found.display_name, found.pynq_image


def readme(project: Project, board: str, display_name: str, pynq_image: str, built: bool) -> str:
    name = project.name
    model = project.meta.get("model", "an ONNX model")
    target = f"{BOARD_HOME}/{name}"
    engine = project.architecture == "sequential"  # no DMAs: the driver loads params.bin into DDR
    program = ("| `params.bin` | the layer-sequential engine's program (layer descriptors, weights), loaded into DDR "
               "by the driver |\n" if engine else "")
    drives = ("loads `params.bin` into DDR and starts the engine over AXI4-Lite" if engine
              else "drives the accelerator through its DMAs")
    if built:
        names = "the IP's name and registers" if engine else "the IP and DMA names"
        bitstream = f"| `{name}.bit`, `{name}.hwh` | the bitstream and its hardware handoff (PYNQ reads {names} from it) |\n"
        status = ""
    else:
        bitstream = ""
        status = (
            f"**No bitstream yet.** This package was made before `make -C <project> bitstream` (Vivado) had built\n"
            f"`output/{name}.bit` and `output/{name}.hwh`: build them, run `hwcodesign package` again, and only then\n"
            f"copy the folder to the board. Until then the notebook runs only in emulation (below).\n\n"
        )
    return f"""# {name} on the {display_name} (PYNQ)

The accelerator hwcodesign {__version__} compiled from `{model}` for the {display_name} (`{board}`), with
its PYNQ driver and a notebook that checks it on the board.

{status}| file | what |
| --- | --- |
{bitstream}| `driver.py` | the driver: `Accelerator().run(frame)`, `run_batch`, `benchmark` (numpy; `pynq` on the board) |
{program}| `notebook.ipynb` | runs the accelerator, checks it bit-exact against the golden model, plots, measures fps |
| `sample.npz` | sample frames (`input`, `input_q`) and the golden model's outputs (`expected_0`, ...) |
| `model.onnx` | the source model (the notebook compares with onnxruntime where it is installed) |
| `report.json` | the compiler's per-layer cycles and resources |
| `project.json` | ports (shape, type, scale, zero point) and foldings |

## On the board

1. Boot the board from an SD card with {pynq_image}, connect it to your network
   (or to your computer) and find its address, `<board-ip>` below.
2. Copy this folder to the board (user `xilinx`, password `xilinx`), from this folder:

   ```sh
   ssh xilinx@<board-ip> mkdir -p {target}
   scp ./* xilinx@<board-ip>:{target}/
   ```

   or copy `{name}.zip` (from `hwcodesign package --zip`) and unpack it there:
   `unzip {name}.zip -d {BOARD_HOME}/`.
3. Open Jupyter at http://<board-ip>:9090 (password `xilinx`), open `{name}/notebook.ipynb` and run all cells
   (Run > Run All Cells). On the board the driver's backend is `pynq` by default: it loads `{name}.bit`
   and {drives}. The last cell prints `HWCODESIGN_NOTEBOOK_RESULT` with
   `bit_exact` (must be true) and the measured `fps`.

In your own code, next to `driver.py`:

```python
from driver import Accelerator
acc = Accelerator()
y = acc.run(frame)          # float (C, H, W) in, dequantized output out; raw=True for integers
```

## Off the board (emulation)

With hwcodesign installed (and g++), the same driver and notebook run against an emulated board that
executes the project's C simulation: set `HWCODESIGN_BACKEND=emulate`, and `HWCODESIGN_PROJECT=<project folder>`
when this folder is not the project's `{DEFAULT_FOLDER}/` (emulation needs the project's `hls/` sources):

```sh
HWCODESIGN_BACKEND=emulate HWCODESIGN_PROJECT=<project folder> jupyter lab notebook.ipynb   # pip install jupyterlab
```
"""


def write_zip(path: Path, name: str, files: dict[str, str | bytes]) -> None:
    """`files` under `<name>/` in a deterministic zip (fixed dates and order), written atomically."""
    def write(stream: BinaryIO) -> None:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for relative, content in sorted(files.items()):
                info = zipfile.ZipInfo(f"{name}/{relative}", date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, content.encode() if isinstance(content, str) else content)

    write_file_atomically(path, write)


__all__ = ["DEFAULT_FOLDER", "PackageError", "default_package_dir", "package_project"]
