"""`--dump-ir DIR`: one numbered text file per pass that ran: for a lowering step the nodes it
took, for `lower` and each IR pass the graph after it.

DIR follows the `-o` rule (`outputs.check_destination`): new, empty, or a folder of IR dumps
this tool wrote, checked before any work. Each file is written atomically, and the folder's
manifest is rewritten after it, so that the folder is always one the next run may replace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from hwcodesign.ir.graph import Graph
from hwcodesign.ir.op import Input
from hwcodesign.outputs import (
    MANIFEST_FILE,
    OutputError,
    PathLike,
    check_destination,
    read_manifest,
    write_file_atomically,
)
from hwcodesign.outputs.manifest import manifest_text

DUMP_KIND = "ir-dump"


def check_dump_dir(folder: PathLike, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Refuse an unsafe DIR before any work, by the `-o` rule and in its words, with the option
    named as the user gave it; returns DIR resolved."""
    try:
        return check_destination(folder, DUMP_KIND, inputs=inputs)
    except OutputError as error:
        raise OutputError(re.sub(r"(?<![\w-])-o\b", "--dump-ir", str(error))) from None


def graph_text(graph: Graph, title: str) -> str:
    """One line per layer: name, op, inputs, output tensor with its shape and number format."""
    lines = [f"# {title}", f"graph {graph.name}: {len(graph)} layers; outputs {', '.join(graph.outputs)}"]
    for op in graph:
        out = op.output
        reads = "" if isinstance(op, Input) else f"({', '.join(op.inputs)})"
        shape = "x".join(map(str, out.shape))
        lines.append(f"{op.name} = {op.kind}{reads} -> {out.name} {shape} {out.describe()}")
    return "\n".join(lines) + "\n"


def step_text(title: str, summary: str, taken: Sequence[str]) -> str:
    """What a lowering step did: it runs inside the walk, so its dump lists the nodes it took."""
    lines = [f"# {title}", f"# {summary}", f"{len(taken)} node(s) taken:", *(f"  {node}" for node in taken)]
    return "\n".join(lines) + "\n"


def write_dump(folder: Path, number: int, name: str, text: str) -> None:
    """Write `NN-name.txt` into `folder` (made if new) and the manifest listing every dump in it."""
    folder.mkdir(parents=True, exist_ok=True)
    file_name = f"{number:02d}-{name}.txt"
    write_file_atomically(folder / file_name, lambda stream: stream.write(text.encode()))
    previous = read_manifest(folder)
    files = {path: (folder / path).read_bytes() for path in (previous.files if previous else ())
             if (folder / path).is_file()}
    files[file_name] = text.encode()
    manifest = manifest_text(DUMP_KIND, files)
    write_file_atomically(folder / MANIFEST_FILE, lambda stream: stream.write(manifest.encode()))


def clear_dumps(folder: Path) -> None:
    """Remove the dumps a previous run wrote (the manifest lists them), before this run's."""
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        return
    for path in manifest.files:
        (folder / path).unlink(missing_ok=True)
    os.remove(folder / MANIFEST_FILE)
