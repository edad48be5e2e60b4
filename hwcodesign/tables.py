"""Plain-text tables for the terminal (no dependency: the output must paste into issues/logs)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right_align: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; columns listed in `right_align` hold numbers."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right_align else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
