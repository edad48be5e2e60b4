"""Where the files the tool reads at run time live: `templates/` and `boards/`.

They stay at the repository top (a hardware engineer edits them without opening the package), and
the build maps them into the package as `hwcodesign._templates` and `hwcodesign._boards`
(setup.cfg `package_dir`), so a wheel carries them. One lookup serves all three ways the package
can be run: the installed copy first (a wheel), then the repository's folder (a checkout or an
editable install, where edits take effect at once). Installed first, because beside a wheel
sits site-packages, where another distribution may have dropped a `templates/` of its own.

And the data files the tool writes for the board (a driver's sample, a host part's program): .npz
archives written byte-identically for identical arrays (`deterministic_npz`), so a regenerated
project's manifest does not change.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from hwcodesign.errors import HwcodesignError

PACKAGE = Path(__file__).resolve().parent


def data_folder(kind: str, error: type[HwcodesignError] = HwcodesignError) -> Path:
    """The folder of `kind` ("templates" or "boards"); `error` names what is missing if neither exists."""
    candidates = (PACKAGE / f"_{kind}", PACKAGE.parent / kind)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise error(f"{kind} not found; looked in " + ", ".join(str(candidate) for candidate in candidates))


def deterministic_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """np.savez stamps the current time into the zip; this writes a fixed one, for identical files.

    The archive is what np.savez writes otherwise (stored .npy entries), read by np.load with
    allow_pickle=False.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.asarray(arrays[key]), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), entry.getvalue())
    return buffer.getvalue()


__all__ = ["data_folder", "deterministic_npz"]
