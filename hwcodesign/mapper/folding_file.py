"""Folding files: a design's per-layer folding and implementation as JSON, to reproduce or pin it.

`compile` writes the chosen folding of every dataflow stage into the project (`folding.json`);
`--folding FILE` reads such a file (or a hand-written one naming only some layers) and pins those
layers to it while the mapper optimises the rest (`ilp.map_dataflow`'s `pinned`). One layer:

    {"format": "hwcodesign-folding", "version": 1,
     "layers": {"conv1": {"pe": 8, "simd": 27, "mac": "lut", "output": "thresholds", "weights": "lutram"}, ...}}

`mac` ("dsp" | "lut"), `output` ("multiply" | "thresholds") and `weights` ("bram" | "lutram", where
the weight ROMs live; `memory.WEIGHT_MEMORIES`) may be left out (their defaults: dsp, multiply, bram).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwcodesign.errors import HwcodesignError
from hwcodesign.hardware.folding import Folding
from hwcodesign.hardware.memory import WEIGHT_MEMORIES

FORMAT = "hwcodesign-folding"
VERSION = 1
FILE_NAME = "folding.json"
MACS = ("dsp", "lut")
OUTPUTS = ("multiply", "thresholds")


class FoldingFileError(HwcodesignError):
    """A folding file that cannot be read or names what the model does not have."""


def folding_json(foldings: Mapping[str, Folding]) -> str:
    """The file's text for these layers' foldings, in the order given."""
    layers = {name: {"pe": f.pe, "simd": f.simd, "mac": f.mac, "output": f.output, "weights": f.weights}
              for name, f in foldings.items()}
    return json.dumps({"format": FORMAT, "version": VERSION, "layers": layers}, indent=2) + "\n"


def read_folding_file(path: str | Path) -> dict[str, Folding]:
    """The pinned foldings of a folding file; FoldingFileError naming the file and the key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise FoldingFileError(f"folding file {path}: cannot read it ({error.__class__.__name__})") from None
    except json.JSONDecodeError as error:
        raise FoldingFileError(f"folding file {path}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise FoldingFileError(f"folding file {path}: not a {FORMAT} file of version {VERSION} (the folding.json "
                               "compile writes into a project)")
    layers = data.get("layers")
    if not isinstance(layers, dict):
        raise FoldingFileError(f"folding file {path}: 'layers' must map layer names to foldings")
    return {str(name): parse_folding(path, str(name), entry) for name, entry in layers.items()}


def parse_folding(path: Path, name: str, entry: Any) -> Folding:
    where = f"folding file {path}: layer '{name}'"
    if not isinstance(entry, dict):
        raise FoldingFileError(f"{where}: must be an object with pe, simd (and mac, output, weights)")
    unknown = sorted(set(entry) - {"pe", "simd", "mac", "output", "weights"})
    if unknown:
        raise FoldingFileError(f"{where}: unknown key '{unknown[0]}' (pe, simd, mac, output, weights)")
    for key in ("pe", "simd"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FoldingFileError(f"{where}: '{key}' must be a positive integer, not {value!r}")
    default = Folding()
    mac, output = entry.get("mac", default.mac), entry.get("output", default.output)
    weights = entry.get("weights", default.weights)
    for key, value, allowed in (("mac", mac, MACS), ("output", output, OUTPUTS), ("weights", weights, WEIGHT_MEMORIES)):
        if value not in allowed:
            raise FoldingFileError(f"{where}: '{key}' must be one of {', '.join(allowed)}, not {value!r}")
    return Folding(entry["pe"], entry["simd"], mac, output, weights)
