"""Jinja2 rendering of the project templates under `templates/`.

Templates live beside the code as files (hls4ml keeps each layer's template next to its config;
we keep them in one tree so a hardware engineer can read the generated code's source directly).
Rendering is strict (`StrictUndefined`): a missing context key is a compiler bug, not an empty
string in a generated file. Output is deterministic: no timestamps, no dict-order surprises.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from hwcodesign.data_files import data_folder


def templates_dir() -> Path:
    """The templates: the installed copy in a wheel, the repository's `templates/` in a checkout."""
    return data_folder("templates")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, **context: Any) -> str:
    """Render `template` (a path relative to `templates/`) with `context`."""
    return environment().get_template(template).render(**context)


def static_file(path: str) -> str:
    """A template file copied verbatim (the g++ shim headers)."""
    return (templates_dir() / path).read_text()
