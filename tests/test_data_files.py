"""The one lookup of templates/ and boards/ (hwcodesign/data_files.py): a wheel's copy first."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwcodesign import data_files
from hwcodesign.errors import BoardError


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the package folder inside `tmp_path` (its site-packages or checkout)."""
    folder = tmp_path / "hwcodesign"
    folder.mkdir()
    monkeypatch.setattr(data_files, "PACKAGE", folder)
    return folder


def test_an_installed_copy_wins_over_a_folder_beside_the_package(package: Path) -> None:
    # Beside a wheel lies site-packages, where another distribution may have put a templates/.
    (package.parent / "templates").mkdir()
    (package / "_templates").mkdir()
    assert data_files.data_folder("templates") == package / "_templates"


def test_a_checkout_uses_the_repository_folder(package: Path) -> None:
    (package.parent / "boards").mkdir()
    assert data_files.data_folder("boards") == package.parent / "boards"


def test_neither_names_both_places(package: Path) -> None:
    with pytest.raises(BoardError, match=r"boards not found; looked in .*_boards, .*boards$"):
        data_files.data_folder("boards", BoardError)
