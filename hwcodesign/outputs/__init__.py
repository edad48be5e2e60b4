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

from hwcodesign.outputs.destination import (
    check_destination,
    check_file_rules,
    check_folder_rules,
    check_output_file,
    check_replaceable,
    check_writable_parent,
    foreign_entries,
    is_package_zip,
    is_product,
    unwritable,
)
from hwcodesign.outputs.leftovers import (
    LEFTOVER,
    NAME_KEPT,
    ROLES,
    kept_name,
    leftover_name,
    leftover_pattern,
    leftovers,
    process_alive,
    provably_own,
    recover_leftovers,
    remove_own_folder,
)
from hwcodesign.outputs.manifest import (
    MANIFEST_FILE,
    PACKAGE_KIND,
    PROJECT_KIND,
    REPORT_KIND,
    SEARCH_KIND,
    STAGING_MARKER,
    WRITTEN_BY,
    DamagedManifestError,
    FileRecord,
    Manifest,
    as_bytes,
    file_record,
    file_sha256,
    manifest_text,
    read_manifest,
    verify_files,
)
from hwcodesign.outputs.paths import (
    SHOWN_OFFENDERS,
    SYSTEM_TREES,
    OutputError,
    PathLike,
    Warn,
    current_umask,
    os_problem,
    print_warning,
    resolved,
    shown,
    system_tree,
)
from hwcodesign.outputs.write import (
    AT_FDCWD,
    RENAME_EXCHANGE,
    rename_exchange,
    swap_into_place,
    write_atomically,
    write_file_atomically,
)

__all__ = [
    "AT_FDCWD",
    "DamagedManifestError",
    "FileRecord",
    "LEFTOVER",
    "MANIFEST_FILE",
    "Manifest",
    "NAME_KEPT",
    "OutputError",
    "PACKAGE_KIND",
    "PROJECT_KIND",
    "PathLike",
    "RENAME_EXCHANGE",
    "REPORT_KIND",
    "ROLES",
    "SEARCH_KIND",
    "SHOWN_OFFENDERS",
    "STAGING_MARKER",
    "SYSTEM_TREES",
    "WRITTEN_BY",
    "Warn",
    "as_bytes",
    "check_destination",
    "check_file_rules",
    "check_folder_rules",
    "check_output_file",
    "check_replaceable",
    "check_writable_parent",
    "current_umask",
    "file_record",
    "file_sha256",
    "foreign_entries",
    "is_package_zip",
    "is_product",
    "kept_name",
    "leftover_name",
    "leftover_pattern",
    "leftovers",
    "manifest_text",
    "os_problem",
    "print_warning",
    "process_alive",
    "provably_own",
    "read_manifest",
    "recover_leftovers",
    "remove_own_folder",
    "rename_exchange",
    "resolved",
    "shown",
    "swap_into_place",
    "system_tree",
    "unwritable",
    "verify_files",
    "write_atomically",
    "write_file_atomically",
]
