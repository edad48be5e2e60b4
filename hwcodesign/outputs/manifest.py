"""The manifest: the record of every file the tool wrote into a folder (size and SHA-256), the
mark that a folder is the tool's own and what readers check files against."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from hwcodesign.outputs.paths import OutputError

MANIFEST_FILE = ".hwcodesign-manifest.json"
STAGING_MARKER = ".hwcodesign-staging"  # in a staging folder until its manifest is written
WRITTEN_BY = "hwcodesign"
# the kinds of folder the tool writes; `-o` replaces a folder only with one of the same kind
PROJECT_KIND, SEARCH_KIND, REPORT_KIND, PACKAGE_KIND = "project", "search", "report", "package"


@dataclass(frozen=True)
class FileRecord:
    """What the tool wrote at one relative path."""

    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The tool's record of a folder it wrote: its kind ("project", "search", "report", "package"),
    its files, and `products`: path patterns the folder's own tools may add (see the module doc)."""

    kind: str
    files: dict[str, FileRecord]
    products: tuple[str, ...] = field(default=())


def file_record(content: bytes) -> FileRecord:
    return FileRecord(len(content), hashlib.sha256(content).hexdigest())


def as_bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def manifest_text(kind: str, files: Mapping[str, str | bytes], products: Sequence[str] = ()) -> str:
    """The manifest of `files` (relative path -> content), deterministic for identical files."""
    records = {path: file_record(as_bytes(content)) for path, content in sorted(files.items())}
    data = {"written_by": WRITTEN_BY, "kind": kind, "products": sorted(products),
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
        products = tuple(str(pattern) for pattern in data.get("products", ()))
        return Manifest(str(data["kind"]), files, products)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise DamagedManifestError(path, str(error)) from None


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


class DamagedManifestError(OutputError):
    """A manifest that is not the tool's JSON (cut short, edited): its folder can be trusted no more."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: damaged manifest ({reason}); write the folder again")
