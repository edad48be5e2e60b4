"""Checking a destination before any work: what `-o` may name (the rule in the package doc)."""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from hwcodesign.outputs.leftovers import LEFTOVER, provably_own, recover_leftovers
from hwcodesign.outputs.manifest import (
    MANIFEST_FILE,
    WRITTEN_BY,
    DamagedManifestError,
    Manifest,
    read_manifest,
)
from hwcodesign.outputs.paths import (
    OutputError,
    PathLike,
    Warn,
    os_problem,
    print_warning,
    resolved,
    shown,
    system_tree,
)


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
