"""Folders the tool writes: staged, swapped into place whole, and signed with a manifest.

Every output folder (a project, a search result, a PYNQ package) is written into a temporary
sibling and renamed into place only when complete, so a failed run leaves nothing half-written.
Each carries `MANIFEST_FILE`, which lists every file the tool wrote with its size and SHA-256:
- it is the mark that a folder is the tool's own (the only kind `-o` may ever replace), and
- it lets a reader (`Project`) detect a file that was edited, cut short or removed since.
The manifest is a pure function of the files, so identical outputs stay byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

from hwcodesign.errors import HwcodesignError

MANIFEST_FILE = ".hwcodesign-manifest.json"
WRITTEN_BY = "hwcodesign"


class OutputError(HwcodesignError):
    """An output folder that cannot be written, or a manifest that cannot be read."""


@dataclass(frozen=True)
class FileRecord:
    """What the tool wrote at one relative path."""

    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The tool's record of a folder it wrote: its kind ("project", "search", "package") and files."""

    kind: str
    files: dict[str, FileRecord]


def file_record(content: bytes) -> FileRecord:
    return FileRecord(len(content), hashlib.sha256(content).hexdigest())


def as_bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def manifest_text(kind: str, files: Mapping[str, str | bytes]) -> str:
    """The manifest of `files` (relative path -> content), deterministic for identical files."""
    records = {path: file_record(as_bytes(content)) for path, content in sorted(files.items())}
    data = {"written_by": WRITTEN_BY, "kind": kind,
            "files": {path: {"bytes": r.bytes, "sha256": r.sha256} for path, r in records.items()}}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None when it has none (not written by this tool)."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("written_by") != WRITTEN_BY:
            raise ValueError("not written by hwcodesign")
        files = {str(name): FileRecord(int(entry["bytes"]), str(entry["sha256"]))
                 for name, entry in dict(data["files"]).items()}
        return Manifest(str(data["kind"]), files)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise OutputError(f"{path}: damaged manifest ({error}); write the folder again") from None


_digests: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path, stat: os.stat_result | None = None) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime_ns): repeated checks (the emulated
    board verifies its project per batch) stat files instead of reading megabytes again, and any
    edit changes a stat and forces a fresh hash. `stat` saves a second stat when the caller has one."""
    stat = stat or path.stat()
    key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def verify_files(folder: Path, manifest: Manifest, skip: Collection[str] = ()) -> None:
    """Check that every file `manifest` lists (except `skip`: files users may edit) is still in
    `folder` as the tool wrote it; raises OutputError naming the first file that is not."""
    for relative, record in sorted(manifest.files.items()):
        if relative in skip:
            continue
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise OutputError(f"{Path(folder) / MANIFEST_FILE}: damaged manifest (lists {relative})")
        path = Path(folder) / relative
        try:
            stat = path.stat()
            if not S_ISREG(stat.st_mode):
                raise OutputError(f"{path} is not a file")
            if stat.st_size != record.bytes:
                raise OutputError(f"{path} has {stat.st_size} bytes instead of {record.bytes}")
            if file_sha256(path, stat) != record.sha256:
                raise OutputError(f"{path} has changed since hwcodesign wrote it")
        except FileNotFoundError:
            raise OutputError(f"{path} is missing") from None
        except OSError as error:
            raise OutputError(f"{path} cannot be read ({error.strerror or error})") from None


def write_atomically(out: Path, files: Mapping[str, str | bytes], kind: str) -> None:
    """Write `files` and their manifest under a temporary sibling of `out`, then swap it into place."""
    out = Path(out).resolve()
    if MANIFEST_FILE in files:
        raise ValueError(f"{MANIFEST_FILE} is written by write_atomically itself")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; an output is an ordinary folder
    try:
        for relative, content in sorted(files.items()):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(as_bytes(content))
        (staging / MANIFEST_FILE).write_text(manifest_text(kind, files))
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
