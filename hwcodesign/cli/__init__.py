"""Command line: a thin layer over the pipeline functions (`hwcodesign --help`)."""

from hwcodesign.cli.main import main

__all__ = ["main"]
