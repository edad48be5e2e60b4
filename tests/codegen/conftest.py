from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_csim_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compile into a fresh cache: tests must never pass on a library built from older sources."""
    previous = os.environ.get("HWCODESIGN_CACHE")
    os.environ["HWCODESIGN_CACHE"] = str(tmp_path_factory.mktemp("csim_cache"))
    yield
    if previous is None:
        os.environ.pop("HWCODESIGN_CACHE", None)
    else:
        os.environ["HWCODESIGN_CACHE"] = previous
