"""What an interrupted run leaves beside an output, recognised and cleaned up by the next run."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from hwcodesign.outputs.manifest import MANIFEST_FILE, STAGING_MARKER, DamagedManifestError, read_manifest
from hwcodesign.outputs.paths import Warn, print_warning, shown

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
