"""Where the files the tool reads at run time live: `templates/` and `boards/`.

They stay at the repository top (a hardware engineer edits them without opening the package), and
the build maps them into the package as `hwcodesign._templates` and `hwcodesign._boards`
(setup.cfg `package_dir`), so a wheel carries them. One lookup serves all three ways the package
can be run: the installed copy first (a wheel), then the repository's folder (a checkout or an
editable install, where edits take effect at once). Installed first, because beside a wheel
sits site-packages, where another distribution may have dropped a `templates/` of its own.
"""

from __future__ import annotations

from pathlib import Path

from hwcodesign.errors import HwcodesignError

PACKAGE = Path(__file__).resolve().parent


def data_folder(kind: str, error: type[HwcodesignError] = HwcodesignError) -> Path:
    """The folder of `kind` ("templates" or "boards"); `error` names what is missing if neither exists."""
    candidates = (PACKAGE / f"_{kind}", PACKAGE.parent / kind)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise error(f"{kind} not found; looked in " + ", ".join(str(candidate) for candidate in candidates))


__all__ = ["data_folder"]
