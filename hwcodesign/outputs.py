"""Folders the tool writes: checked before any work, staged, swapped into place whole, and signed.

Every output folder (a project, a search result, a simulate report, a PYNQ package) is written into
a hidden sibling and swapped into place only when complete. Each carries `MANIFEST_FILE`, which
lists every file the tool wrote with its size and SHA-256:
- it is the mark that a folder is the tool's own, the only kind `-o` may ever replace
  (`check_destination`), and
- it lets a reader (`Project`) detect a file that was edited, cut short or removed since.
The manifest is a pure function of the files, so identical outputs stay byte-identical.

`-o` rule. A destination may be a new path, an empty folder, or a folder this tool wrote as the
same kind that holds nothing but the files in its manifest and:
- the manifest's `products`: what the folder's own tools write into it (for a project, what the
  generated Makefile's `make csim|hls|bitstream` builds, the paths its `make clean` removes; and
  the driver's `__pycache__` and Jupyter checkpoints),
- folders the tool wrote inside it (a `pynq_package/`, checked by the same rule), and
- package zips (`hwcodesign package --zip`: `<name>/` holding a manifest).
Everything else is refused with one line naming the path and the first offending files: a plain
file, user files, the working directory or a folder holding it, a folder holding an input of the
command, a path inside a file, /proc, /sys, /dev, a parent the tool cannot write. A file is the
tool's by its path alone: one the manifest lists is replaced even if edited since (the hashes are
for readers that must not run a damaged project, and a damaged one must stay replaceable).

Kill safety. Staging and retired folders are named `.<name>.hwcodesign-{staging|retired}-<pid>-<hex>`
beside the output and always hold `STAGING_MARKER` or a manifest (or nothing), so they are provably
the tool's. On Linux the complete staging folder is exchanged with the old output in one
`renameat2(RENAME_EXCHANGE)`; elsewhere the old one is renamed away first (a kill between the two
renames leaves it retired beside `-o`). The next run for the same `-o` restores a retired copy if
`-o` vanished, removes the leftovers of dead processes and says so in one warning line; folders
that only look like leftovers are left alone and named. Single files (`write_file_atomically`: a
csim result, a package zip) go through `.<name>.hwcodesign-partial-<pid>-<hex>` the same way.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from hwcodesign.errors import HwcodesignError

MANIFEST_FILE = ".hwcodesign-manifest.json"
STAGING_MARKER = ".hwcodesign-staging"  # in a staging folder until its manifest is written
WRITTEN_BY = "hwcodesign"
# the kinds of folder the tool writes; `-o` replaces a folder only with one of the same kind
PROJECT_KIND, SEARCH_KIND, REPORT_KIND, PACKAGE_KIND = "project", "search", "report", "package"
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))
SHOWN_OFFENDERS = 3

Warn = Callable[[str], None]
PathLike = str | os.PathLike[str]


class OutputError(HwcodesignError):
    """An output folder that cannot be written, or a manifest that cannot be read."""


def print_warning(message: str) -> None:
    print(f"hwcodesign: warning: {message}", file=sys.stderr)


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


# Checking a destination -------------------------------------------------------------------------

def check_destination(out: PathLike, kind: str, *, inputs: Iterable[PathLike | None] = (),
                      warn: Warn = print_warning) -> Path:
    """Refuse (OutputError, naming the path) an `-o` whose replacement could lose a user's file.

    Call it before any work. `inputs` are the files and folders the command reads (the model,
    frames, a project): `-o` may not be one of them or hold one. First recovers what an
    interrupted run left beside `out` (`recover_leftovers`). Returns `out` resolved.
    """
    given = Path(out)
    out = resolved(given)
    named = f"output folder {out}" + (f" ({given})" if str(given) != str(out) else "")
    try:
        check_folder_rules(out, named, kind, inputs, warn)
    except OSError as error:  # a folder on the way this user may not read
        raise OutputError(f"{named} cannot be checked ({os_problem(error)}); choose another -o") from None
    return out


def check_folder_rules(out: Path, named: str, kind: str, inputs: Iterable[PathLike | None], warn: Warn) -> None:
    system = system_tree(out)
    if system is not None:
        raise OutputError(f"{named} is under {system}, which holds the system's files, not outputs; "
                          "choose another -o")
    cwd = resolved(Path.cwd())
    if out == cwd or out in cwd.parents:
        what = "is the working directory" if out == cwd else f"holds the working directory {cwd}"
        raise OutputError(f"{named} {what}, which is never replaced; choose another -o")
    for source in (resolved(Path(path)) for path in inputs if path is not None):
        if out == source or out in source.parents:
            what = "is" if out == source else "holds"
            raise OutputError(f"{named} {what} the input {source}, which would be lost; choose another -o")
    check_writable_parent(out, named)
    recover_leftovers(out, warn)
    if out.exists() or out.is_symlink():
        check_replaceable(out, kind, named)


def check_writable_parent(out: Path, named: str) -> None:
    """`out` is a folder or can be made: its nearest existing ancestor is a folder this process can write."""
    existing = out if out.exists() else next(parent for parent in out.parents if parent.exists())
    if existing == out:
        if not out.is_dir():
            raise OutputError(f"{named} is a file; -o names a folder (new, empty, or one hwcodesign wrote)")
        existing = out.parent
    elif not existing.is_dir():
        raise OutputError(f"{named} cannot be made: {existing} is a file, not a folder")
    problem = unwritable(existing)
    if problem:
        raise OutputError(f"{named} cannot be written: {existing} is not writable ({problem})")


def unwritable(folder: Path) -> str | None:
    """Why nothing can be created in `folder`, or None. Tried with an unnamed file (O_TMPFILE on
    Linux), which a kill cannot leave behind; permission bits alone would not tell: root ignores
    them, a read-only mount or /proc does not."""
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        return error.strerror or str(error)
    return None


def check_replaceable(out: Path, kind: str, named: str) -> None:
    """`out` exists: it must be an empty folder or one this tool wrote as `kind`, holding nothing else."""
    if not out.is_dir():
        raise OutputError(f"{named} is a file; -o names a folder (new, empty, or one hwcodesign wrote)")
    try:
        manifest = read_manifest(out)
    except DamagedManifestError as error:
        raise OutputError(f"{named} has a damaged {MANIFEST_FILE} ({error.reason}); hwcodesign will not "
                          "replace it: move or delete the folder yourself") from None
    if manifest is None:
        foreign = sorted(entry.name for entry in os.scandir(out))
        if foreign:
            older = " (it looks like a project written before hwcodesign kept manifests: delete it yourself)" if (
                out / "project.json").is_file() else ""
            raise OutputError(f"{named} holds files hwcodesign did not write ({shown(foreign)}){older}; "
                              "choose a new or empty folder")
        return
    if manifest.kind != kind:
        raise OutputError(f"{named} holds a hwcodesign {manifest.kind}, not a {kind}; choose another -o")
    foreign = foreign_entries(out, manifest)
    if foreign:
        raise OutputError(f"{named} holds files hwcodesign did not write ({shown(foreign)}); move them "
                          "away or choose another -o")


def shown(paths: Sequence[str]) -> str:
    more = len(paths) - SHOWN_OFFENDERS
    return ", ".join(paths[:SHOWN_OFFENDERS]) + (f" and {more} more" if more > 0 else "")


def foreign_entries(folder: Path, manifest: Manifest, prefix: str = "") -> list[str]:
    """Paths under `folder` (relative to the checked output) that the tool did not write.

    Symbolic links are never the tool's: replacing the folder would only drop the link, but the
    user made it, so they are reported rather than silently removed.
    """
    found: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        relative = f"{prefix}{entry.name}"
        if (not prefix and entry.name == MANIFEST_FILE) or is_product(relative, manifest.products):
            continue
        if LEFTOVER.fullmatch(entry.name) and (not entry.is_dir(follow_symlinks=False)
                                               or provably_own(Path(entry.path))):
            continue  # what a killed `package` left inside a project: the tool's, removed with it
        if entry.is_dir(follow_symlinks=False):
            try:
                nested = read_manifest(Path(entry.path))
            except DamagedManifestError:
                found.append(f"{relative}/{MANIFEST_FILE}")
                continue
            if nested is not None:  # a folder the tool wrote inside this one, e.g. pynq_package/
                found += [f"{relative}/{path}" for path in foreign_entries(Path(entry.path), nested)]
            else:
                found += foreign_entries(Path(entry.path), manifest, f"{relative}/")
        elif not entry.is_file(follow_symlinks=False):
            found.append(relative)
        elif relative not in manifest.files and not is_package_zip(Path(entry.path)):
            found.append(relative)
    return found


def is_product(relative: str, products: Iterable[str]) -> bool:
    """`relative` is one of `products` (shell patterns, component by component) or lies inside one."""
    parts = relative.split("/")
    for pattern in products:
        pattern_parts = pattern.strip("/").split("/")
        if len(parts) >= len(pattern_parts) and all(
                fnmatch.fnmatchcase(part, expected) for part, expected in zip(parts, pattern_parts)):
            return True
    return False


def is_package_zip(path: Path) -> bool:
    """A zip `hwcodesign package --zip` wrote: one top folder holding a package manifest."""
    if path.suffix != ".zip" or path.is_symlink():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            tops = {name.split("/", 1)[0] for name in names}
            if len(tops) != 1 or f"{next(iter(tops))}/{MANIFEST_FILE}" not in names:
                return False
            data = json.loads(archive.read(f"{next(iter(tops))}/{MANIFEST_FILE}"))
    except (OSError, zipfile.BadZipFile, ValueError, KeyError):
        return False
    return isinstance(data, dict) and data.get("written_by") == WRITTEN_BY and data.get("kind") == "package"


# What an interrupted run leaves behind ---------------------------------------------------------

# staging and retired folders of `write_atomically`, the partial file of `write_file_atomically`
ROLES = ("staging", "retired", "partial")
NAME_KEPT = 150  # bytes of the output's name in its leftovers' names (a file name has 255 at most)


def leftover_pattern(name: str) -> re.Pattern[str]:
    """Names of leftovers for an output named by the regular expression `name`: (role, pid)."""
    return re.compile(rf"\.{name}\.hwcodesign-({'|'.join(ROLES)})-(\d+)-[0-9a-f]+")


LEFTOVER = leftover_pattern(".+")


def leftover_name(out: Path, role: str) -> Path:
    """A hidden sibling of `out` that the next run recognises as this process's `role` folder."""
    return out.with_name(f".{kept_name(out)}.hwcodesign-{role}-{os.getpid()}-{secrets.token_hex(4)}")


def kept_name(out: Path) -> str:
    return os.fsencode(out.name)[:NAME_KEPT].decode(errors="ignore")


def leftovers(out: Path) -> list[tuple[Path, str, int]]:
    """(path, role, pid) of every staging or retired folder or partial file named for `out`."""
    if not out.parent.is_dir():
        return []
    pattern = leftover_pattern(re.escape(kept_name(out)))
    found = []
    for entry in sorted(os.scandir(out.parent), key=lambda entry: entry.name):
        match = pattern.fullmatch(entry.name)
        if match and (entry.is_file(follow_symlinks=False) if match[1] == "partial"
                      else entry.is_dir(follow_symlinks=False)):
            found.append((Path(entry.path), match[1], int(match[2])))
    return found


def process_alive(pid: int) -> bool:
    """Whether `pid` may still be writing (then its folders are left alone). Unsure means alive;
    off POSIX, os.kill would end the process instead of probing it."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def provably_own(folder: Path) -> bool:
    """Empty, or holding the staging marker or a readable manifest: a folder only this tool makes
    (a partial file is known by its name alone: nothing else is named like it)."""
    if folder.is_file() and not folder.is_symlink():
        return True
    try:
        return (not any(folder.iterdir()) or (folder / STAGING_MARKER).is_file()
                or read_manifest(folder) is not None)
    except (OSError, DamagedManifestError):
        return False


def recover_leftovers(out: Path, warn: Warn = print_warning) -> None:
    """Restore `out` from a retired copy when a kill lost it mid-swap; remove the leftovers of dead
    runs; leave any folder that is not provably the tool's alone (and say so). One warning line."""
    stale = [(path, role) for path, role, pid in leftovers(out) if not process_alive(pid)]
    if not stale:
        return
    actions = []
    own = [(path, role) for path, role in stale if provably_own(path)]
    if not out.exists() and not out.is_symlink():
        retired = [path for path, role in own if role == "retired"]
        if retired:
            newest = max(retired, key=lambda path: path.stat().st_mtime_ns)
            os.rename(newest, out)
            own = [(path, role) for path, role in own if path != newest]
            actions.append(f"restored {out} from {newest.name}")
    for path, _ in own:
        path.unlink() if path.is_file() else remove_own_folder(path)
    if own:
        actions.append(f"removed {len(own)} unfinished .{out.name}.hwcodesign-* left beside it")
    alien = [path.name for path, _ in stale if not provably_own(path) and path.exists()]
    if alien:
        actions.append(f"left {shown(alien)} alone (not provably hwcodesign's)")
    warn(f"{out}: an interrupted run was cleaned up: {'; '.join(actions)}")


def remove_own_folder(folder: Path) -> None:
    """Remove a staging or retired folder, its marker and manifest last: killed at any point, what
    is left is still provably the tool's (or empty) and the next run finishes the job."""
    markers = (STAGING_MARKER, MANIFEST_FILE)
    for entry in os.scandir(folder):
        if entry.name in markers:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    for name in markers:
        (folder / name).unlink(missing_ok=True)
    os.rmdir(folder)


# Writing ---------------------------------------------------------------------------------------

def write_atomically(out: PathLike, files: Mapping[str, str | bytes], kind: str, *,
                     products: Sequence[str] = (), warn: Warn = print_warning) -> None:
    """Write `files` and their manifest under a hidden sibling of `out`, then swap it into place.

    `out` is checked again here (`check_destination`), so no caller can replace a user's folder,
    and files added to it while the work ran are found. `products` go into the manifest.
    """
    if MANIFEST_FILE in files or STAGING_MARKER in files:
        raise ValueError(f"{MANIFEST_FILE} and {STAGING_MARKER} are written by write_atomically itself")
    out = check_destination(out, kind, warn=warn)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = leftover_name(out, "staging")
    try:
        os.mkdir(staging)  # 0o777 less the umask: an output is an ordinary folder
        (staging / STAGING_MARKER).write_bytes(b"")
        for relative, content in sorted(files.items()):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(as_bytes(content))
        (staging / MANIFEST_FILE).write_text(manifest_text(kind, files, products))
        (staging / STAGING_MARKER).unlink()
        old = swap_into_place(staging, out)
    except BaseException as error:
        if staging.exists():
            remove_own_folder(staging)
        if isinstance(error, OSError):  # a full disk, a quota: the user's to fix, and nothing was lost
            raise OutputError(f"output folder {out} could not be written ({os_problem(error)}); "
                              "the previous one, if any, is unchanged") from None
        raise
    if old is not None:
        try:
            remove_own_folder(old)
        except OSError as error:  # the new output is in place; the next run removes the old copy
            warn(f"{out} is written, but its previous copy {old.name} could not be removed ({os_problem(error)})")


def os_problem(error: OSError) -> str:
    return f"{error.strerror}: {error.filename}" if error.strerror and error.filename else str(error)


def swap_into_place(staging: Path, out: Path) -> Path | None:
    """Put the complete `staging` at `out` so that `out` is never missing, if the system allows;
    returns where the previous output now is (for the caller to remove), if there was one."""
    if not out.exists():
        os.rename(staging, out)
        return None
    if rename_exchange(staging, out):
        return staging  # now holds the old output
    retired = leftover_name(out, "retired")
    os.rename(out, retired)  # a kill from here to the next rename: the next run restores it
    try:
        os.rename(staging, out)
    except BaseException:
        os.rename(retired, out)
        raise
    return retired


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def rename_exchange(first: Path, second: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def write_file_atomically(path: Path, write: Callable[[BinaryIO], None], warn: Warn = print_warning) -> None:
    """Write one file through `write(handle)` into a hidden sibling renamed over `path`: a reader,
    or a kill, never sees it half-written (and the next write removes what a kill left). The file
    gets 0o666 less the umask, like `open`."""
    recover_leftovers(path, warn)
    staging = leftover_name(path, "partial")
    handle = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def check_output_file(out: PathLike, suffix: str, *, inputs: Iterable[PathLike | None] = ()) -> Path:
    """An output file path, checked before any work: `suffix` added when it has none (any other is
    refused, rather than written under a name the user did not give), never an input, in an existing
    folder this process can write. Returns the path to write, resolved."""
    given = Path(out)
    path = resolved(given if given.suffix else given.with_name(given.name + suffix))
    try:
        check_file_rules(given, path, suffix, inputs)
    except OSError as error:  # a folder on the way this user may not read
        raise OutputError(f"output file {path} cannot be checked ({os_problem(error)})") from None
    return path


def check_file_rules(given: Path, path: Path, suffix: str, inputs: Iterable[PathLike | None]) -> None:
    folder = given if given.is_dir() else path if path.is_dir() else None
    if folder is not None:
        raise OutputError(f"output file {resolved(folder)} is a folder; name a {suffix} file")
    named = f"output file {path}"
    if path.suffix != suffix:
        raise OutputError(f"{named}: the name must end in {suffix}")
    system = system_tree(path)
    if system is not None:
        raise OutputError(f"{named} is under {system}, which holds the system's files, not outputs")
    if any(path == resolved(Path(source)) for source in inputs if source is not None):
        raise OutputError(f"{named} is an input of this command and will not be overwritten")
    if not path.parent.is_dir():
        existing = next(parent for parent in path.parents if parent.exists())
        problem = f"{existing} is a file, not a folder" if existing.is_file() else f"{path.parent} does not exist"
        raise OutputError(f"{named} cannot be written: {problem}")
    problem = unwritable(path.parent)
    if problem:
        raise OutputError(f"{named} cannot be written: {path.parent} is not writable ({problem})")


def system_tree(path: Path) -> Path | None:
    """The system tree (/proc, /sys, /dev) that `path` lies in, if any."""
    return next((tree for tree in SYSTEM_TREES if path == tree or tree in path.parents), None)


def resolved(path: Path) -> Path:
    """`path` made absolute with its links followed; a link loop (which `resolve` raises on)
    stays as written, absolute, so the rules still apply to it and reading it fails in one line."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
