import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Shared test helpers (tests/support) import as `support`.
sys.path.insert(0, str(Path(__file__).parent))

from support.examples import build_models_module  # noqa: E402


@pytest.fixture(scope="session")
def example_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled example models, built once per test session (training takes ~15 s)."""
    bm = build_models_module()
    out = tmp_path_factory.mktemp("example_models")
    return {
        "w8a8": bm.build_resnet_qdq(out, weight_bits=8),
        "w4a8": bm.build_resnet_qdq(out, weight_bits=4),
        "cnv": bm.build_qonnx_cnn(out),
        "float": out / bm.RESNET_FLOAT_FILE,
    }


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
