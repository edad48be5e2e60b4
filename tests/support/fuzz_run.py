"""Running one fuzz case and judging what the CLI did with it.

Every case runs `hwcodesign.cli.commands.main(argv)` in a forked child of an interpreter that has already
imported the package (a fresh `python -m hwcodesign` costs a second of imports per case; a fork
costs milliseconds). The child gets its own process group, an address-space limit and a
deadline, so a segfault, a runaway allocation or a hang is observed from outside exactly as a
user's shell would see it, and never takes the harness down. An exception escaping `main` is
printed as Python would print it, so a traceback in stderr means the same thing in both modes;
`isolation="subprocess"` runs the real `python -m hwcodesign` instead, to confirm a finding.

A case is judged by `classify`: the exit status, stderr, and whether any file that existed
before the run (outside the paths the command may legitimately write) changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Outcomes. The first three are what the issue promises; every other one is a finding.
REFUSED = "refused"  # exit 2 (or 130 after Ctrl-C), no traceback, one error line naming something
ACCEPTED = "accepted"  # exit 0 where the mutation may be accepted
IGNORED = "ignored"  # a case the harness could not set up on this base (never counted as a finding)
TRACEBACK = "traceback"
SIGNAL = "signal"
WRONG = "wrong-success"  # exit 0 where it must refuse, or outputs that differ from the intact project's
TIMEOUT = "timeout"
DATA_LOSS = "data-loss"  # a file the user had before the run changed or vanished
ORT_DISAGREES = "ort-disagrees"  # accepted a model onnxruntime refuses
UNCLEAR = "unclear"  # refused, but not with exactly one line naming what is wrong (or another exit code)
LEFTOVER = "leftover"  # hidden staging folders left behind after the next run
OUTCOMES = (REFUSED, ACCEPTED, TRACEBACK, SIGNAL, WRONG, TIMEOUT, DATA_LOSS, ORT_DISAGREES, UNCLEAR, LEFTOVER)
FINDINGS = frozenset(OUTCOMES) - {REFUSED, ACCEPTED}

ERROR_LINE = re.compile(r"^(hwcodesign|hwcodesign \w+|usage: .*): error: ")
# Without a name to look for, a message names something when it quotes it, gives a path or an option.
NAMED = re.compile(r"'[^']+'|\"[^\"]+\"|/|\.onnx|\.npy|\.npz|\.json|\.bin|--[a-z]|\b[a-z_]+=")
INTERRUPTED = 130
# The CLI's progress lines (cli/progress.py): a step that finished or was cut short, not a message
PROGRESS_LINE = re.compile(r" (done|failed) \(\d+\.\d s\)$")


@dataclass
class Case:
    """One hostile or careless input: the command to run on it and what a correct CLI must do."""

    family: str
    mutation: str  # what was changed, for the report
    argv: list[str]  # the CLI arguments, paths relative to the case's working folder
    names: tuple[str, ...] = ()  # the error message must contain one of these (all of them with all_names)
    all_names: bool = False
    expect: str = "refuse"  # "refuse": exit 0 is wrong; "either": accepting is fine too
    forbidden: tuple[str, ...] = ()  # phrases that would mislead here (e.g. "no such file" for a directory)
    onnx_model: str | None = None  # the mutated model, for the onnxruntime cross-check when accepted
    compare: tuple[str, str] | None = None  # (output .npz written by the run, intact project's .npz)
    writable: tuple[str, ...] = ()  # paths the command may create or replace (relative to the work folder)
    interrupt: tuple[int, float] | None = None  # (signal, seconds after the start) sent to the process group
    crash_at: int | None = None  # SIGKILL just before the CLI's n-th change to the file system (fork only)
    # an extra check after a run that refused or was accepted: (work folder, result, a way to run the CLI
    # again) -> (outcome, why) or None
    after: Callable[[Path, Result, Callable[[list[str]], Result]], tuple[str, str] | None] | None = None
    timeout: float = 60.0


@dataclass
class Result:
    returncode: int  # negative: killed by that signal
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


@dataclass
class Verdict:
    case: Case
    outcome: str
    detail: str
    result: Result | None = None
    index: int = -1

    @property
    def last_line(self) -> str:
        if self.result is None:
            return ""
        lines = [line for line in self.result.stderr.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


@dataclass
class Limits:
    """What a child may use: seconds of wall clock and bytes of address space beyond the parent's."""

    memory_bytes: int = 3 << 30
    timeout_scale: float = 1.0
    isolation: str = "fork"  # or "subprocess": the real `python -m hwcodesign`
    cache: Path | None = None  # HWCODESIGN_CACHE for the children (C-simulation libraries)
    extra_env: dict[str, str] = field(default_factory=dict)


def address_space_limit(limits: Limits) -> int:
    """The parent's current address space plus the allowance: a fork starts as big as its parent."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024 + limits.memory_bytes
    return 8 << 30


def run_command(argv: Sequence[str], cwd: Path, limits: Limits, timeout: float,
                interrupt: tuple[int, float] | None = None, scratch: Path | None = None,
                crash_at: int | None = None) -> Result:
    """Run the CLI on `argv` in `cwd` in a child process; never raises for anything the child does.
    `crash_at` (fork isolation only): the child kills itself before that change to the file system."""
    if limits.isolation == "subprocess":
        return run_subprocess([sys.executable, "-m", "hwcodesign", *argv], cwd, limits, timeout, interrupt)
    preload()

    def body() -> int:
        if crash_at is not None:
            install_crash_point(crash_at)
        return cli_main(argv)
    return run_forked(body, cwd, limits, timeout, interrupt, scratch)


FILESYSTEM_STEPS = ((os, "replace"), (os, "rename"), (os, "mkdir"), (shutil, "rmtree"), (Path, "write_bytes"),
                    (Path, "write_text"))


def install_crash_point(number: int) -> Callable[[], int]:
    """In this (forked) process, die by SIGKILL just before the `number`-th call that changes the
    file system (0: never), as a power cut or `kill -9` would; returns the count of calls so far.

    A kill on a timer almost never lands inside the few milliseconds an output folder is being
    swapped; counting the calls reaches every step of the swap."""
    count = [0]

    def wrap(function: Callable) -> Callable:
        def counted(*args: object, **kwargs: object) -> object:
            count[0] += 1
            if count[0] == number:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return counted

    for owner, name in FILESYSTEM_STEPS:
        setattr(owner, name, wrap(getattr(owner, name)))
    return lambda: count[0]


def count_filesystem_steps(argv: Sequence[str], cwd: Path, limits: Limits, scratch: Path) -> int:
    """How many file-system changes the CLI makes running `argv` (the range for `crash_at`)."""
    preload()

    def body() -> int:
        count = install_crash_point(0)
        code = cli_main(argv)
        print(f"filesystem steps: {count()}")
        return code

    result = run_forked(body, cwd, limits, 300, scratch=scratch)
    found = re.findall(r"filesystem steps: (\d+)", result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"counting file-system steps of {argv} failed:\n{result.stderr[-2000:]}")
    return int(found[-1])


def cli_main(argv: Sequence[str]) -> int:
    from hwcodesign.cli.commands import main

    return main(list(argv))


def preload() -> None:
    """Import what the commands import lazily, once in the parent, so no forked case pays for it."""
    import onnxruntime  # noqa: F401

    import hwcodesign.cli.commands  # noqa: F401
    import hwcodesign.flows.search  # noqa: F401
    import hwcodesign.report.search_report  # noqa: F401


def child_environment(limits: Limits) -> dict[str, str]:
    env = dict(os.environ)
    if limits.cache is not None:
        env["HWCODESIGN_CACHE"] = str(limits.cache)
    env.update(limits.extra_env)
    return env


def run_forked(body: Callable[[], int], cwd: Path, limits: Limits, timeout: float,
               interrupt: tuple[int, float] | None = None, scratch: Path | None = None) -> Result:
    """`body()` in a forked child: its return value is the exit code, an escaping exception a traceback."""
    scratch = scratch or cwd.parent
    out_path, err_path = scratch / ".fuzz_stdout", scratch / ".fuzz_stderr"
    memory = address_space_limit(limits)
    env = child_environment(limits)
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.setpgid(0, 0)
            redirect_standard_streams(out_path, err_path)
            os.environ.clear()
            os.environ.update(env)
            os.chdir(cwd)
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            with contextlib.suppress(Exception):
                import faulthandler

                faulthandler.disable()
            code = body()
        except SystemExit as stop:  # argparse, or sys.exit in the code under test
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # noqa: BLE001 - exactly what a user would see escape
            traceback.print_exc()
            code = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 1)
    with contextlib.suppress(OSError):  # also here, so an early interrupt cannot miss the new group
        os.setpgid(pid, pid)
    status, timed_out = wait_with_deadline(pid, timeout, interrupt, start)
    return Result(decode_status(status), read_text(out_path), read_text(err_path), time.monotonic() - start, timed_out)


def redirect_standard_streams(out_path: Path, err_path: Path) -> None:
    for fd, path in ((1, out_path), (2, err_path)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115 - lives as long as the child
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stdin = open(0, closefd=False)  # noqa: SIM115


def wait_with_deadline(pid: int, timeout: float, interrupt: tuple[int, float] | None,
                       start: float) -> tuple[int, bool]:
    """Wait for the child; send the interrupt when due; kill its whole group at the deadline."""
    pending = interrupt
    delay = 0.002
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            kill_group(pid, signal.SIGKILL)  # compilers or solvers it left running
            return status, False
        elapsed = time.monotonic() - start
        if pending is not None and elapsed >= pending[1]:
            kill_group(pid, pending[0])
            pending = None
        if elapsed > timeout:
            kill_group(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return status, True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def decode_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_subprocess(command: Sequence[str], cwd: Path, limits: Limits, timeout: float,
                   interrupt: tuple[int, float] | None) -> Result:
    memory = limits.memory_bytes + (1 << 30)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    start = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, env=child_environment(limits), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                               start_new_session=True, preexec_fn=limit)
    timed_out = False
    try:
        if interrupt is not None:
            try:
                out, err = process.communicate(timeout=interrupt[1])
            except subprocess.TimeoutExpired:
                kill_group(process.pid, interrupt[0])
                out, err = process.communicate(timeout=max(timeout - interrupt[1], 1))
        else:
            out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        timed_out = True
    return Result(process.returncode, out, err, time.monotonic() - start, timed_out)


def read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:
        return ""


# --- files the user had -------------------------------------------------------------------


def snapshot(root: Path, skip: Iterable[Path] = ()) -> dict[str, str]:
    """Relative path -> content hash ("dir" for folders, the target for symlinks), skipping `skip`."""
    skipped = {os.path.abspath(path) for path in skip}  # not resolve(): a symlink loop would raise
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if os.path.abspath(here / d) not in skipped]
        for name in dirnames:
            found[str((here / name).relative_to(root))] = "dir"
        for name in filenames:
            path = here / name
            if os.path.abspath(path) in skipped:
                continue
            found[str(path.relative_to(root))] = file_digest(path)
    return found


def file_digest(path: Path) -> str:
    """The content's hash; a symlink's target, or the kind of a special file (reading a named pipe
    would block the harness forever)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "link:" + os.readlink(path)
    if not stat.S_ISREG(info.st_mode):
        return f"special:{stat.S_IFMT(info.st_mode):o}"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        return f"unreadable:{error.errno}"


def lost_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [path for path, digest in before.items() if after.get(path) != digest]


# --- judging a run ------------------------------------------------------------------------


def classify(case: Case, result: Result, lost: list[str], outputs_differ: str | None,
             ort_refuses: Callable[[], bool | None]) -> tuple[str, str]:
    """(outcome, detail) for one run; data loss first, then crashes, then the message."""
    if lost:
        return DATA_LOSS, f"{len(lost)} changed or removed: {', '.join(sorted(lost)[:4])}"
    if result.timed_out:
        return TIMEOUT, f"no answer within {result.seconds:.0f} s"
    if "Traceback (most recent call last)" in result.stderr:
        return TRACEBACK, exception_line(result.stderr)
    killed_on_purpose = case.crash_at is not None or (case.interrupt and case.interrupt[0] == signal.SIGKILL)
    if killed_on_purpose and result.returncode == -signal.SIGKILL:
        return ACCEPTED, ""  # what survived the kill is the case's `after` check
    if result.returncode < 0 and not (case.interrupt and -result.returncode == case.interrupt[0]):
        return SIGNAL, f"killed by {signal.Signals(-result.returncode).name}"
    if result.returncode == 0:
        if case.expect == "refuse":
            return WRONG, "exit 0 for input that must be refused"
        if outputs_differ:
            return WRONG, outputs_differ
        if case.onnx_model and ort_refuses():
            return ORT_DISAGREES, "onnxruntime refuses this model"
        return ACCEPTED, ""
    if case.interrupt and result.returncode in (INTERRUPTED, -case.interrupt[0]):
        if result.returncode != INTERRUPTED:
            return UNCLEAR, f"died of {signal.Signals(case.interrupt[0]).name} instead of exiting {INTERRUPTED}"
        lines = [line for line in result.stderr.splitlines() if line.strip() and not PROGRESS_LINE.search(line)]
        return (REFUSED, "") if len(lines) <= 1 else (UNCLEAR, f"{len(lines)} lines after Ctrl-C")
    return judge_message(case, result)


def judge_message(case: Case, result: Result) -> tuple[str, str]:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
    if result.returncode != 2:
        return UNCLEAR, f"exit {result.returncode}"
    if len(errors) != 1:
        return UNCLEAR, f"{len(errors)} error lines"
    continuation = lines[errors[0] + 1:]
    if any(not line.startswith("  ") for line in continuation):  # a listing's items are indented under it
        return UNCLEAR, f"the message spans {len(lines) - errors[0]} lines"
    message = " ".join(lines[errors[0]:])
    text = message.lower()
    for phrase in case.forbidden:
        if phrase.lower() in text:
            return UNCLEAR, f"says '{phrase}'"
    names = [name for name in case.names if name]
    if case.expect == "either" and not case.all_names:
        # a legal edit may break the model further on (a stride that changes a shape an Add needs):
        # the node the message names then rightly differs from the one edited
        names = []
    if names:
        present = [name for name in names if name.lower() in text]
        if case.all_names and len(present) < len(names):
            missing = [name for name in names if name not in present]
            return UNCLEAR, f"does not name {', '.join(missing[:4])}"
        if not present:
            return UNCLEAR, f"names none of {', '.join(names[:4])}"
    elif not NAMED.search(message.split("error:", 1)[1]):
        return UNCLEAR, "names nothing"
    return REFUSED, ""


def exception_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(" ")]
    return lines[-1][:200] if lines else "traceback"


def compare_outputs(work: Path, produced: str, baseline: str) -> str | None:
    """Why the outputs of a successful run differ from the intact project's, or None."""
    path = work / produced
    if not path.is_file():
        return f"exit 0 but no {produced}"
    try:
        with np.load(path) as got, np.load(baseline) as want:
            if sorted(got.files) != sorted(want.files):
                return f"outputs {sorted(got.files)} instead of {sorted(want.files)}"
            for name in want.files:
                if got[name].shape != want[name].shape:
                    return f"'{name}' has shape {got[name].shape} instead of {want[name].shape}"
                differing = int(np.count_nonzero(got[name] != want[name]))
                if differing:
                    return f"{differing} of {want[name].size} elements of '{name}' differ from the intact project's"
    except (OSError, ValueError) as error:
        return f"exit 0 but {produced} is unreadable: {error}"
    return None


# --- onnxruntime's verdict ----------------------------------------------------------------

ORT_INPUT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_, "tensor(string)": np.str_,
}
ORT_REFUSES = 3
ORT_MAX_INPUT = 1 << 24  # elements; a bigger input is not run (a session that loads counts as accepted)


def onnxruntime_refuses(model: Path, limits: Limits, scratch: Path, timeout: float = 60) -> bool | None:
    """Whether onnxruntime (graph optimisations off) refuses to load or run `model` on random
    inputs; None when it could not tell (it crashed or hung)."""
    result = run_forked(lambda: onnxruntime_verdict(model), model.parent, limits, timeout, scratch=scratch)
    if result.timed_out or result.returncode not in (0, ORT_REFUSES):
        return None
    return result.returncode == ORT_REFUSES


def onnxruntime_verdict(model: Path) -> int:
    from hwcodesign.reference import Reference, onnxruntime

    onnxruntime()  # its absence is no refusal of the model
    rng = np.random.default_rng(0)
    try:
        reference = Reference(model)
        feeds = {}
        for value in reference.session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
            if int(np.prod(shape)) > ORT_MAX_INPUT:
                return 0
            dtype = ORT_INPUT_TYPES.get(value.type, np.float32)
            feeds[value.name] = rng.normal(0, 1, shape).astype(dtype)
        reference.run(feeds)
    except Exception:  # noqa: BLE001 - any refusal counts
        return ORT_REFUSES
    return 0
