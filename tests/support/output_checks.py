"""Checks on output folders shared by the `-o` safety tests: a tree's full snapshot (what "nothing
touched" compares) and a folder's completeness against its manifest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hwcodesign.outputs import MANIFEST_FILE, read_manifest


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under `root`, hidden ones too, with its content (links by target)."""
    entries: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            relative = str(path.relative_to(root))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = "dir"
            elif path.is_file():
                entries[relative] = path.read_bytes()
            else:  # a FIFO or socket: reading it would block
                entries[relative] = ("special", path.stat().st_mode)
    return entries


def assert_complete(folder: Path, kind: str) -> None:
    """`folder` holds exactly the files its manifest lists, each with the recorded size and hash."""
    manifest = read_manifest(folder)
    assert manifest is not None and manifest.kind == kind, folder
    on_disk = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()} - {MANIFEST_FILE}
    assert on_disk == set(manifest.files), folder
    for relative, record in manifest.files.items():
        content = (folder / relative).read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (record.bytes, record.sha256), relative
