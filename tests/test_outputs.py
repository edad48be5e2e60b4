"""Kill safety of output folders: SIGKILL at every step of a write leaves the old output or the new
one at `-o` (issue 15, finding 8), and the next run cleans up what the killed one left."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from support.output_checks import assert_complete
from support.qdq_by_hand import conv_bn_relu_qdq

import hwcodesign
from hwcodesign.flows.compile import compile_model
from hwcodesign.outputs import (
    MANIFEST_FILE,
    STAGING_MARKER,
    OutputError,
    check_destination,
    check_output_file,
    write_atomically,
    write_file_atomically,
)
from hwcodesign.outputs import write as write_module

REPOSITORY = Path(hwcodesign.__file__).resolve().parent.parent


def generation_files(generation: int) -> dict[str, str | bytes]:
    return {"project.json": f'{{"generation": {generation}}}\n', "hls/params/weights.h": f"// {generation}\n" * 4000,
            "driver/sample.bin": bytes([generation]) * 30000, "Makefile": f"# generation {generation}\n"}


def generation_of(out: Path) -> int:
    assert_complete(out, "project")
    return int((out / "project.json").read_text().split(":")[1].strip(" }\n"))


def kill_at_step(out: Path, generation: int, step: int, exchange: bool) -> bool:
    """Fork a child that writes `generation` over `out` and SIGKILL it right after its `step`-th
    file-system operation; True when killed, False when the write finished before that step."""
    ready, report = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count operations, stop at `step` and wait to be killed
        try:
            os.close(ready)
            counter = itertools.count(1)

            def counted(function: Callable[..., object]) -> Callable[..., object]:
                def wrapped(*args: object, **kwargs: object) -> object:
                    result = function(*args, **kwargs)
                    if next(counter) == step:
                        os.write(report, b"k")
                        time.sleep(60)
                    return result
                return wrapped

            for module, name in ((os, "rename"), (os, "replace"), (os, "unlink"), (os, "rmdir"), (os, "mkdir"),
                                 (shutil, "rmtree"), (Path, "write_bytes"), (Path, "write_text")):
                setattr(module, name, counted(getattr(module, name)))
            write_module.rename_exchange = counted(write_module.rename_exchange) if exchange else lambda a, b: False
            write_atomically(out, generation_files(generation), kind="project", warn=lambda _: None)
            os.write(report, b"d")
        finally:
            os._exit(0)
    os.close(report)
    outcome = os.read(ready, 1)
    os.close(ready)
    if outcome == b"k":
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert outcome in (b"k", b"d"), "the child failed before reaching its step"
    return outcome == b"k"


def hidden_siblings(out: Path) -> list[str]:
    return sorted(path.name for path in out.parent.iterdir() if path != out)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_kill_at_every_step_leaves_the_old_or_the_new_output(tmp_path: Path, exchange: bool) -> None:
    out = tmp_path / "net"
    write_atomically(out, generation_files(1), kind="project")
    previous = 1
    for step in range(1, 100):
        generation = step + 1
        killed = kill_at_step(out, generation, step, exchange)
        if exchange or out.exists():  # with RENAME_EXCHANGE -o is never missing, not even for a moment
            assert generation_of(out) in (previous, generation)
        left = hidden_siblings(out)
        warnings: list[str] = []
        check_destination(out, "project", warn=warnings.append)  # what the next run does first
        assert generation_of(out) in (previous, generation), step
        assert hidden_siblings(out) == [], step
        assert len(warnings) == (1 if left else 0), (left, warnings)
        previous = generation_of(out)
        if not killed:
            assert previous == generation
            break
    else:
        pytest.fail("the write never finished")
    assert step > 8  # the steps above really covered the staging, the swap and the clean-up


def test_killing_a_compile_while_it_writes_never_loses_the_project(tmp_path: Path) -> None:
    """A real `hwcodesign compile` into an existing project, killed once its staging folder appears
    (a few milliseconds into the write, when the swap and clean-up happen)."""
    model = tmp_path / "small.onnx"
    onnx.save(conv_bn_relu_qdq(), model)
    out = tmp_path / "build" / "small"
    compile_model(model, "ultra96v2", out)
    command = [sys.executable, "-m", "hwcodesign", "compile", str(model), "-o", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    for delay in (0.0, 0.002, 0.005, 0.01):
        process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while process.poll() is None and not any(".hwcodesign-staging-" in path.name for path in out.parent.iterdir()):
            time.sleep(0.0005)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert_complete(out, "project")
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert_complete(out, "project")
    assert [path.name for path in out.parent.iterdir()] == ["small"]  # the last run removed the leftovers


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_next_run_restores_a_retired_copy_and_removes_stale_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "net"
    write_atomically(out, generation_files(1), kind="project")
    retired = tmp_path / f".net.hwcodesign-retired-{dead_pid()}-00ff"
    out.rename(retired)  # killed between the two renames of the fallback swap
    staging = tmp_path / f".net.hwcodesign-staging-{dead_pid()}-0aa0"
    (staging / "hls").mkdir(parents=True)
    (staging / STAGING_MARKER).write_bytes(b"")
    (staging / "hls" / "top.cpp").write_text("half of a new project")
    empty = tmp_path / f".net.hwcodesign-staging-{dead_pid()}-0bb0"
    empty.mkdir()  # killed right after making the staging folder
    warnings: list[str] = []
    check_destination(out, "project", warn=warnings.append)
    assert generation_of(out) == 1
    assert hidden_siblings(out) == []
    assert len(warnings) == 1 and f"restored {out}" in warnings[0] and "removed 2" in warnings[0]


def test_folders_that_are_not_provably_the_tools_are_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "net"
    write_atomically(out, generation_files(1), kind="project")
    lookalike = tmp_path / f".net.hwcodesign-staging-{dead_pid()}-0cc0"
    lookalike.mkdir()
    (lookalike / "mine.txt").write_text("no marker, no manifest: not ours")
    live = tmp_path / f".net.hwcodesign-staging-{os.getppid()}-0dd0"  # a run still writing
    live.mkdir()
    (live / STAGING_MARKER).write_bytes(b"")
    backup = tmp_path / ".net.backup"
    backup.mkdir()
    (backup / MANIFEST_FILE).write_text("{}")
    warnings: list[str] = []
    check_destination(out, "project", warn=warnings.append)
    assert (lookalike / "mine.txt").is_file() and (live / STAGING_MARKER).is_file() and backup.is_dir()
    assert len(warnings) == 1 and lookalike.name in warnings[0] and "alone" in warnings[0]


def test_a_partial_file_left_by_a_kill_is_removed_by_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "result.npz"
    partial = tmp_path / f".result.npz.hwcodesign-partial-{dead_pid()}-0ee0"
    partial.write_bytes(b"half a file")
    warnings: list[str] = []
    write_file_atomically(target, lambda stream: stream.write(b"complete"), warn=warnings.append)
    assert target.read_bytes() == b"complete"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["result.npz"]
    assert len(warnings) == 1 and "removed 1" in warnings[0]


def test_a_folder_this_user_cannot_read_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root reads everything, so the EACCES an ordinary user gets inside the destination is simulated."""
    out = tmp_path / "net"
    write_atomically(out, generation_files(1), kind="project")
    (out / "build").mkdir()
    (out / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        if Path(str(path)).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(OutputError, match=f"cannot be checked \\(Permission denied: {out / 'locked'}\\)"):
        check_destination(out, "project")
    real_is_dir = Path.is_dir

    def is_dir(self: Path) -> bool:
        if "locked" in self.parts:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_dir(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    with pytest.raises(OutputError, match="output file .* cannot be checked \\(Permission denied"):
        check_output_file(out / "locked" / "result.npz", ".npz")
