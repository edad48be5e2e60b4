"""Writing an output: staged beside it, swapped into place whole (one renameat2 exchange on Linux)."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from hwcodesign.outputs.destination import check_destination
from hwcodesign.outputs.leftovers import leftover_name, recover_leftovers, remove_own_folder
from hwcodesign.outputs.manifest import MANIFEST_FILE, STAGING_MARKER, as_bytes, manifest_text
from hwcodesign.outputs.paths import OutputError, PathLike, Warn, os_problem, print_warning


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
