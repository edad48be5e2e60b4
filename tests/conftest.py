import os
import sys
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session")
def brevitas_export(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str, str], Path]:
    """FINN's `bnn_pynq` networks as Brevitas exports them (support/brevitas_models.py):
    `brevitas_export("cnv", "w1a1", "qonnx")` is the file's path, each (network, precision,
    exporter) built once per session; a combination the exporter refuses raises ExportRefused."""
    from support.brevitas_models import ExportCache

    return ExportCache(tmp_path_factory.mktemp("brevitas"))


@pytest.fixture(scope="session", autouse=True)
def private_csim_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compile into a fresh cache: tests must never pass on a library built from older sources.
    The pytest-xdist workers of one session share it (their base folders' parent, new each
    session): modules on two workers that build the same sources (test_csim_ops and the loop
    counts, test_csim_deform and its loop counts) build them once, the second waiting on the
    build's lock (`csim.build_lock`)."""
    previous = os.environ.get("HWCODESIGN_CACHE")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        cache = tmp_path_factory.getbasetemp().parent / "csim_cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("csim_cache")
    os.environ["HWCODESIGN_CACHE"] = str(cache)
    yield
    if previous is None:
        os.environ.pop("HWCODESIGN_CACHE", None)
    else:
        os.environ["HWCODESIGN_CACHE"] = previous
