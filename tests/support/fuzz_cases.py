"""Fuzz case generators, one list per family: each writes its inputs into the case's folder and
returns the `Case` (command line and expectations) that `fuzz_run` executes and judges.

Model families (structure, quantizers, external, resources, files) apply a mutator from
`fuzz_models` to a base model and run inspect/simulate/compile/search on it; the others build
hostile option values, frame files, damaged compiled projects, output paths and interrupts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from support.fuzz_models import EITHER, MUTATORS, REFUSE, Mutation, pick
from support.fuzz_run import DATA_LOSS, LEFTOVER, UNCLEAR, Case, Result

MODEL = "model.onnx"
SEARCHABLE = ("qdq_small", "qdq_chain")  # QDQ and small: `search` on ResNet-8 takes 90 s
FRAMES = "frames.npy"


@dataclass
class Assets:
    """What every case starts from, built once per campaign (fuzz_campaign.build_assets)."""

    models: dict[str, Path]  # base model name -> .onnx
    ort_runs: dict[str, bool]  # onnxruntime runs the intact base model (its verdict on a mutant counts)
    frames: Path  # float frames for qdq_small, (2, 3, 10, 10)
    projects: dict[str, Path]  # "dataflow" / "sequential" -> qdq_small compiled
    baselines: dict[str, Path]  # the intact projects' csim outputs (.npz) on `frames`
    compile_seconds: float  # how long compiling qdq_small took: interrupts land within it
    input_names: tuple[str, ...]  # qdq_small's input as the model and the project name it
    compile_steps: int  # file-system changes compiling qdq_small onto a previous project makes


@dataclass
class Context:
    work: Path  # the case's working folder (the child's cwd); its parent holds a sibling file
    assets: Assets
    rng: np.random.Generator

    def copy_model(self, base: str = "qdq_small", name: str = MODEL) -> str:
        shutil.copyfile(self.assets.models[base], self.work / name)
        return name

    def copy_frames(self, name: str = FRAMES) -> str:
        shutil.copyfile(self.assets.frames, self.work / name)
        return name

    def copy_project(self, architecture: str, name: str = "project") -> str:
        shutil.copytree(self.assets.projects[architecture], self.work / name, symlinks=True)
        return name


Generator = Callable[[Context], Case | None]


# --- model families -------------------------------------------------------------------------


def model_command(rng: np.random.Generator, model: str, searchable: bool) -> list[str]:
    """inspect, simulate, compile or search on `model`, cheap settings for tiny networks."""
    kind = pick(rng, ["inspect"] * 4 + ["simulate"] * 2 + ["compile"] * 2 + (["search"] if searchable else []))
    if kind == "inspect":
        return ["inspect", model]
    if kind == "simulate":
        return ["simulate", model, "--architecture", pick(rng, ["dataflow", "auto"]), "-o", "report"]
    if kind == "compile":
        return ["compile", model, "--architecture", pick(rng, ["dataflow", "sequential", "auto"]), "-o", "project"]
    return ["search", model, "-o", "search"]


def model_case(family: str, mutate: Callable) -> Generator:
    def generate(ctx: Context) -> Case | None:
        for base in ctx.rng.permutation(sorted(ctx.assets.models)).tolist():  # the first base it applies to
            model = onnx.load(ctx.assets.models[base])
            mutation: Mutation | None = mutate(model, ctx.rng, ctx.work)
            if mutation is not None:
                break
        else:
            return None
        data = mutation.raw if mutation.raw is not None else model.SerializeToString()
        (ctx.work / MODEL).write_bytes(data)
        argv = model_command(ctx.rng, MODEL, searchable=base in SEARCHABLE)
        expect = mutation.inspect_expect if argv[0] == "inspect" and mutation.inspect_expect else mutation.expect
        judged_by_ort = mutation.ort and ctx.assets.ort_runs.get(base)
        return Case(family, f"{base}: {mutation.description}", argv, names=mutation.names,
                    all_names=mutation.all_names, expect=expect, forbidden=mutation.forbidden,
                    onnx_model=MODEL if judged_by_ort else None, timeout=40 if family == "resources" else 60)
    generate.__name__ = mutate.__name__
    return generate


def model_path_cases() -> list[Generator]:
    """The model argument is not a regular file at all."""
    def directory(ctx: Context) -> Case:
        (ctx.work / "net.onnx").mkdir()
        return Case("files", "a directory as the model", model_command(ctx.rng, "net.onnx", searchable=True),
                    names=("net.onnx",), forbidden=("no such file",))

    def device(ctx: Context) -> Case:
        path = pick(ctx.rng, ["/dev/zero", "/dev/null", "/dev/urandom"])
        return Case("files", f"{path} as the model", model_command(ctx.rng, path, searchable=True), names=(path,),
                    forbidden=("no such file",), timeout=30)

    def fifo(ctx: Context) -> Case:
        os.mkfifo(ctx.work / "pipe.onnx")
        return Case("files", "a named pipe nobody writes as the model",
                    model_command(ctx.rng, "pipe.onnx", searchable=True), names=("pipe.onnx",),
                    forbidden=("no such file",), timeout=30)

    def missing(ctx: Context) -> Case:
        return Case("files", "a model path that does not exist", model_command(ctx.rng, "absent.onnx", searchable=True),
                    names=("absent.onnx",))

    def symlink_loop(ctx: Context) -> Case:
        os.symlink("loop.onnx", ctx.work / "loop.onnx")
        return Case("files", "a symlink to itself as the model", model_command(ctx.rng, "loop.onnx", searchable=True),
                    names=("loop.onnx",))

    return [directory, device, fifo, missing, symlink_loop]


# --- (f) option values ----------------------------------------------------------------------

OPTION_VALUES: list[tuple[tuple[str, ...], str, list[tuple[str, str]]]] = [
    # (commands, option, [(value, expectation)])
    (("simulate", "compile", "search"), "--fps", [("nan", REFUSE), ("inf", REFUSE), ("-1", REFUSE), ("0", REFUSE),
                                                  ("1e-300", EITHER), ("1e300", REFUSE), ("abc", REFUSE)]),
    (("simulate", "compile"), "--density", [("0", REFUSE), ("-0.5", REFUSE), ("1.5", REFUSE), ("nan", REFUSE),
                                            ("inf", REFUSE), ("1e-9", EITHER)]),
    (("simulate", "compile"), "--percentile", [("-1", REFUSE), ("101", REFUSE), ("nan", REFUSE), ("inf", REFUSE)]),
    (("simulate", "compile", "search"), "--cap", [("dsp=0", REFUSE), ("dsp=2", REFUSE), ("foo=0.5", REFUSE),
                                                  ("dsp=nan", REFUSE), ("dsp=", REFUSE), ("dsp", REFUSE),
                                                  ("lut=1e-300", EITHER), ("dsp=inf", REFUSE)]),
    (("search",), "--formats", [("int8,int8", REFUSE), ("", REFUSE), (",", REFUSE), ("int9", REFUSE),
                                ("dybit9", REFUSE), ("int8,,int4", EITHER), ("int0", REFUSE)]),
    (("search",), "--max-sensitivity", [("nan", REFUSE), ("-1", REFUSE), ("inf", EITHER), ("0", EITHER)]),
    (("compile",), "--word-bits", [("7", REFUSE), ("abc", REFUSE), ("0", REFUSE), ("1024", REFUSE)]),
    (("simulate", "compile", "search"), "--board", [("nosuch", REFUSE), ("", REFUSE), ("../../etc/passwd", REFUSE),
                                                    ("Ultra96V2", EITHER)]),
    (("simulate", "compile"), "--goal", [("speed", REFUSE)]),
    (("simulate", "compile"), "--architecture", [("both", REFUSE)]),
]


def option_cases() -> list[Generator]:
    def make(commands: tuple[str, ...], option: str, values: list[tuple[str, str]]) -> Generator:
        def generate(ctx: Context) -> Case:
            command = pick(ctx.rng, list(commands))
            value, expect = values[int(ctx.rng.integers(len(values)))]
            model = ctx.copy_model()
            output = {"simulate": "report", "compile": "project", "search": "search"}[command]
            argv = [command, model, f"{option}={value}", "-o", output]
            if option == "--percentile":
                argv += ["--inputs", ctx.copy_frames()]
            names = (option, option.lstrip("-"), *((value,) if value and option != "--cap" else ()))
            return Case("options", f"{command} {option}={value}", argv, names=names, expect=expect)
        generate.__name__ = f"option{option.replace('-', '_')}"
        return generate

    def exclusive(ctx: Context) -> Case:
        return Case("options", "search --fps with --max-sensitivity",
                    ["search", ctx.copy_model(), "--fps", "10", "--max-sensitivity", "1", "-o", "search"],
                    names=("--fps", "--max-sensitivity"))

    def csim_other_model(ctx: Context) -> Case:
        other = ctx.copy_model(pick(ctx.rng, ["qdq_chain", "qonnx_cnv"]), "other.onnx")
        return Case("options", "csim --model of a different network",
                    ["csim", str(ctx.assets.projects["dataflow"]), ctx.copy_frames(), "-o", "out.npz", "--model", other],
                    names=("other.onnx",))

    return [make(*entry) for entry in OPTION_VALUES] + [exclusive, csim_other_model]


# --- (g) frame files ------------------------------------------------------------------------


def frame_bytes(ctx: Context) -> tuple[str, bytes | None, Callable[[Path], None] | None, str]:
    """(what, file bytes or None, writer or None, expectation) of one hostile frames file."""
    rng = ctx.rng
    good = np.load(ctx.assets.frames)
    path = ctx.work / FRAMES

    def save(value: np.ndarray, **kwargs: object) -> Callable[[Path], None]:
        return lambda target: np.save(target, value, **kwargs)

    variants: list[tuple[str, object, str]] = [
        ("garbage bytes", rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), REFUSE),
        ("an empty file", b"", REFUSE),
        ("a truncated .npy", None, REFUSE),
        ("a pickled object array", save(np.array([{"a": 1}, None], dtype=object), allow_pickle=True), REFUSE),
        ("frames of the wrong shape (2,3,9,9)", save(good[:, :, :9, :9]), REFUSE),
        ("frames of rank 2", save(good.reshape(6, -1)), REFUSE),
        ("zero frames", save(good[:0]), REFUSE),
        ("complex frames", save(good.astype(np.complex64)), REFUSE),
        ("string frames", save(np.full(good.shape, "abc")), REFUSE),
        ("NaN frames", save(np.full(good.shape, np.nan, np.float32)), REFUSE),
        ("inf frames", save(np.full(good.shape, np.inf, np.float32)), REFUSE),
        ("integer frames outside uint8 (300)", save(np.full(good.shape, 300, np.int64)), REFUSE),
        ("negative integer frames for a uint8 input", save(np.full(good.shape, -5, np.int32)), REFUSE),
        ("bool frames", save(good > 0), EITHER),
        ("float16 frames", save(good.astype(np.float16)), EITHER),
        ("big-endian float frames", save(good.astype(">f4")), EITHER),
        ("frames of 1e30", save(np.full(good.shape, 1e30, np.float32)), EITHER),
        ("an .npz without the input's name", lambda target: np.savez(target, wrong=good), REFUSE),
        ("an empty .npz", lambda target: np.savez(target), REFUSE),
        ("a directory", lambda target: target.mkdir(), REFUSE),
        ("a missing file", lambda target: None, REFUSE),
    ]
    what, content, expect = variants[int(rng.integers(len(variants)))]
    if what == "a truncated .npy":
        np.save(path, good)
        data = path.read_bytes()
        content = data[: int(rng.integers(10, len(data) - 1))]
    if isinstance(content, bytes):
        return what, content, None, expect
    return what, None, content, expect  # type: ignore[return-value]


def frames_case(ctx: Context) -> Case:
    what, content, writer, expect = frame_bytes(ctx)
    target = ctx.work / FRAMES
    if content is not None:
        target.write_bytes(content)
    elif writer is not None:
        writer(target)
        written = [p for p in ctx.work.iterdir() if p.name.startswith("frames.npy")]
        if written and written[0].name != FRAMES:  # np.savez appended .npz
            written[0].rename(target)
    command = pick(ctx.rng, ["csim"] * 3 + ["simulate", "compile", "search"])
    if command == "csim":
        argv = ["csim", str(ctx.assets.projects[pick(ctx.rng, ["dataflow", "sequential"])]), FRAMES, "-o", "out.npz"]
    else:
        output = {"simulate": "report", "compile": "project", "search": "search"}[command]
        argv = [command, ctx.copy_model(), "--inputs", FRAMES, "-o", output]
    forbidden = ("not found", "no such file") if what == "a directory" else ()
    if what == "NaN frames":
        forbidden = ("outside",)  # finding 7: "values outside uint8" for NaN
    names = (FRAMES, *(f"'{name}'" for name in ctx.assets.input_names))
    return Case("frames", f"{command}: {what}", argv, names=names, expect=expect, forbidden=forbidden)


# --- (h) compiled projects ------------------------------------------------------------------


@dataclass
class Damage:
    """One way to damage a compiled project, and whether csim and package must refuse it."""

    what: str
    apply: Callable[[], object]
    names: tuple[str, ...]  # what a good message names
    csim: str = REFUSE
    package: str = REFUSE


def json_edit(path: Path, edit: Callable[[dict], object]) -> Callable[[], None]:
    def apply() -> None:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data, indent=2) + "\n")
    return apply


# keys `csim` can do without (it reads ports, word width, architecture and the engine's params)
CSIM_OPTIONAL_KEYS = ("hwcodesign_version", "model", "layers", "streams", "testbench_frames", "clock_mhz",
                      "instructions", "registers")


def project_damages(rng: np.random.Generator, root: Path, architecture: str) -> list[Damage]:
    """The ways to damage the project at `root` (a copy of an intact one)."""
    meta = root / "project.json"
    data = json.loads(meta.read_text())
    key = pick(rng, sorted(data))
    side = pick(rng, ["inputs", "outputs"])
    axis = int(rng.integers(1, 4))
    bits = int(pick(rng, [4, 16, 1, 0, 64]))
    word = int(pick(rng, [32, 7, 0]))
    other = {"dataflow": "sequential", "sequential": "dataflow"}[architecture]
    top_h = root / "hls" / "top.h"
    damages = [
        Damage("project.json cut in half", lambda: cut(meta), ("project.json",)),
        *(Damage(f"project.json is '{text}'", lambda text=text: meta.write_text(text), ("project.json",))
          for text in ("{}", "[]", "null", "")),
        Damage(f"project.json without '{key}'", json_edit(meta, lambda d: d.pop(key)), ("project.json", key),
               csim=EITHER if key in CSIM_OPTIONAL_KEYS else REFUSE),
        Damage('"outputs": []', json_edit(meta, lambda d: d.__setitem__("outputs", [])), ("outputs",)),
        Damage('"inputs": []', json_edit(meta, lambda d: d.__setitem__("inputs", [])), ("inputs",)),
        Damage(f"{side}[0].shape[{axis}] changed", json_edit(meta, lambda d: d[side][0]["shape"].__setitem__(
            axis, d[side][0]["shape"][axis] + 1)), ("project.json", "shape")),
        Damage(f"{side}[0].bits = {bits}", json_edit(meta, lambda d: d[side][0].__setitem__("bits", bits)),
               ("project.json", "bits")),
        Damage(f"{side}[0].signed flipped", json_edit(meta, lambda d: d[side][0].__setitem__(
            "signed", not d[side][0]["signed"])), ("project.json", "signed")),
        Damage("outputs[0].scale doubled", json_edit(meta, lambda d: d["outputs"][0].__setitem__(
            "scale", d["outputs"][0]["scale"] * 2)), ("project.json", "scale")),
        Damage(f"word_bits = {word}", json_edit(meta, lambda d: d.__setitem__("word_bits", word)),
               ("project.json", "word_bits")),
        Damage("architecture flipped", json_edit(meta, lambda d: d.__setitem__("architecture", other)),
               ("project.json", "architecture")),
        Damage("architecture = 'foo'", json_edit(meta, lambda d: d.__setitem__("architecture", "foo")),
               ("architecture", "foo")),
        Damage("name = '../../escaped'", json_edit(meta, lambda d: d.__setitem__("name", "../../escaped")),
               ("name", "escaped"), csim=EITHER),
        Damage("the manifest deleted", lambda: (root / ".hwcodesign-manifest.json").unlink(), ("manifest",),
               csim=EITHER, package=EITHER),
        Damage("hls/tb_data input vectors cut", lambda: cut(next((root / "hls" / "tb_data").glob("in*.dat"))),
               ("in0",), csim=EITHER, package=EITHER),
        Damage("driver/driver.py deleted", lambda: (root / "driver" / "driver.py").unlink(), ("driver.py",),
               csim=EITHER),
        Damage("a comment appended to hls/top.h", lambda: top_h.write_text(top_h.read_text() + "// edited\n"),
               ("top.h",), csim=EITHER, package=EITHER),
        Damage("hls/top.cpp deleted", lambda: (root / "hls" / "top.cpp").unlink(), ("top.cpp",), package=EITHER),
    ]
    if architecture == "sequential":
        params = root / "hls" / "tb_data" / "params.bin"
        damages += [
            Damage("params.bin empty", lambda: params.write_bytes(b""), ("params.bin",)),
            Damage("params.bin cut in half", lambda: cut(params), ("params.bin",)),
            Damage("params.bin: one byte changed", lambda: flip_byte(params, rng), ("params.bin",)),
            Damage("params.bin deleted", lambda: params.unlink(), ("params.bin",)),
            Damage("params.bin with 4 KiB of zeros appended",
                   lambda: params.write_bytes(params.read_bytes() + bytes(4096)), ("params.bin",), csim=EITHER),
            Damage("params_file = '../../../etc/hostname'",
                   json_edit(meta, lambda d: d.__setitem__("params_file", "../../../etc/hostname")),
                   ("params_file", "hostname")),
        ]
    else:
        header = pick(rng, sorted((root / "hls" / "params").glob("*.h")))
        damages += [
            Damage(f"{header.name} deleted", lambda: header.unlink(), (header.name,), package=EITHER),
            Damage(f"a number in {header.name} changed", lambda: edit_number(header, rng), (header.name,),
                   package=EITHER),
        ]
    return damages


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path: Path, rng: np.random.Generator) -> None:
    data = bytearray(path.read_bytes())
    data[int(rng.integers(len(data)))] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_number(path: Path, rng: np.random.Generator) -> None:
    """Change one number in a brace-enclosed table (the weights), else the last number in the file."""
    text = path.read_text()
    start = text.find("{", text.find("= {"))
    positions = [i for i in range(max(start, 0), len(text)) if text[i].isdigit()]
    position = positions[int(rng.integers(len(positions)))]
    digit = str((int(text[position]) + 1 + int(rng.integers(8))) % 10)
    path.write_text(text[:position] + digit + text[position + 1:])


def project_case(ctx: Context) -> Case:
    architecture = pick(ctx.rng, ["dataflow", "sequential"])
    name = ctx.copy_project(architecture)
    damage = pick(ctx.rng, project_damages(ctx.rng, ctx.work / name, architecture))
    damage.apply()
    if ctx.rng.random() < 0.7:
        argv = ["csim", name, ctx.copy_frames(), "-o", "out.npz"]
        return Case("projects", f"{architecture} project, {damage.what}: csim", argv, names=damage.names,
                    expect=damage.csim, compare=("out.npz", str(ctx.assets.baselines[architecture])))
    return Case("projects", f"{architecture} project, {damage.what}: package", ["package", name, "-o", "package"],
                names=damage.names, expect=damage.package)


# --- (i) output paths -----------------------------------------------------------------------


def user_files(work: Path) -> None:
    """What a user keeps around: a plain file, a folder of their own, a file beside the work folder."""
    (work / "notes.txt").write_text("my notes\n")
    (work / "mydir").mkdir()
    (work / "mydir" / "thesis.tex").write_text("\\documentclass{article}\n")
    (work.parent / "sibling.txt").write_text("beside the working folder\n")


def output_cases() -> list[Generator]:
    def destination(ctx: Context, target: str, what: str, expect: str = REFUSE, names: tuple[str, ...] = (),
                    commands: tuple[str, ...] = ("compile", "simulate", "search", "package", "csim")) -> Case:
        user_files(ctx.work)
        command = pick(ctx.rng, list(commands))
        if command in ("compile", "simulate", "search"):
            argv = [command, ctx.copy_model(), "-o", target]
            if command == "compile":
                argv += ["--architecture", "dataflow"]
        elif command == "package":
            argv = ["package", ctx.copy_project("dataflow"), "-o", target]
        else:
            argv = ["csim", str(ctx.assets.projects["dataflow"]), ctx.copy_frames(), "-o", target]
        if command == "simulate" and expect == REFUSE and Path(target).suffix != ".txt":
            expect = EITHER  # a report adds two files to a folder and replaces none (the snapshot checks that)
        return Case("outputs", f"{command} -o {what}", argv, names=names or (Path(target).name or target,),
                    expect=expect)

    def onto_file(ctx):
        return destination(ctx, "notes.txt", "a plain file of the user", names=("notes.txt",),
                           commands=("compile", "simulate", "search", "package"))

    def onto_user_folder(ctx):
        return destination(ctx, "mydir", "a folder of the user's files", names=("mydir",),
                           commands=("compile", "simulate", "search", "package"))

    def csim_onto_folder(ctx):
        (ctx.work / "out.npz").mkdir()
        (ctx.work / "out.npz" / "keep.txt").write_text("keep\n")
        return destination(ctx, "out.npz", "a folder named out.npz", names=("out.npz",), commands=("csim",))

    def onto_cwd(ctx):
        return destination(ctx, ".", "the working directory", names=("'.'", str(ctx.work), "current"),
                           commands=("compile", "simulate", "search", "package"))

    def onto_parent(ctx):
        return destination(ctx, "..", "the parent directory", names=("..", str(ctx.work.parent)),
                           commands=("compile", "simulate", "search", "package"))

    def onto_absolute_cwd(ctx):
        return destination(ctx, str(ctx.work), "the working directory by absolute path", names=(str(ctx.work),),
                           commands=("compile", "simulate", "search", "package"))

    def empty_string(ctx):
        return destination(ctx, "", "'' (an empty path)", names=("-o", "--output", "empty"),
                           commands=("compile", "simulate", "search", "package"))

    def under_file(ctx):
        return destination(ctx, "notes.txt/sub", "a path under a plain file", names=("notes.txt",))

    def under_proc(ctx):
        return destination(ctx, "/proc/fuzz_out", "a folder under /proc", names=("/proc",))

    def onto_model(ctx):
        return destination(ctx, MODEL, "the model file itself", names=(MODEL,),
                           commands=("compile", "simulate", "search"))

    def onto_empty_folder(ctx):
        (ctx.work / "empty").mkdir()
        return destination(ctx, "empty", "an empty folder", expect=EITHER)

    def onto_tool_project(ctx):
        user_files(ctx.work)
        ctx.copy_project("dataflow", "previous")
        case = Case("outputs", "compile -o a project it wrote before",
                    ["compile", ctx.copy_model(), "--architecture", "dataflow", "-o", "previous"], expect=EITHER,
                    writable=("previous",))
        case.after = lambda work, result, run: complete_project(work / "previous")
        return case

    def onto_tool_project_with_user_file(ctx):
        user_files(ctx.work)
        ctx.copy_project("dataflow", "previous")
        (ctx.work / "previous" / "my_results.csv").write_text("keep me\n")
        return Case("outputs", "compile -o a project holding a file the user added",
                    ["compile", ctx.copy_model(), "--architecture", "dataflow", "-o", "previous"],
                    names=("previous", "my_results.csv"))

    def model_inside_output(ctx):
        user_files(ctx.work)
        (ctx.work / "models").mkdir()
        model = ctx.copy_model(name="models/net.onnx")
        return Case("outputs", "compile -o the folder holding the model",
                    ["compile", model, "--architecture", "dataflow", "-o", "models"], names=("models",))

    def csim_without_suffix(ctx):
        user_files(ctx.work)
        case = Case("outputs", "csim -o result (numpy adds .npz)",
                    ["csim", str(ctx.assets.projects["dataflow"]), ctx.copy_frames(), "-o", "result"], expect=EITHER)
        case.after = lambda work, result, run: (
            None if "result.npz" in result.stdout else (UNCLEAR, "reports a path without the .npz numpy adds"))
        return case

    return [onto_file, onto_user_folder, csim_onto_folder, onto_cwd, onto_parent, onto_absolute_cwd, empty_string,
            under_file,
            under_proc, onto_model, onto_empty_folder, onto_tool_project, onto_tool_project_with_user_file,
            model_inside_output, csim_without_suffix]


def complete_project(folder: Path) -> tuple[str, str] | None:
    """None when `folder` is a whole project (every file its manifest lists, as listed), else data loss."""
    from hwcodesign.errors import HwcodesignError
    from hwcodesign.outputs import file_record, read_manifest

    try:
        manifest = read_manifest(folder)
    except HwcodesignError as error:
        return DATA_LOSS, f"{folder.name}: {error}"
    if manifest is None:
        return DATA_LOSS, f"{folder.name} holds no complete project (no manifest)"
    for relative, record in manifest.files.items():
        path = folder / relative
        if not path.is_file() or file_record(path.read_bytes()) != record:
            return DATA_LOSS, f"{folder.name}/{relative} missing or not as the manifest records"
    return None


# --- interrupts -----------------------------------------------------------------------------


def interrupt_cases() -> list[Generator]:
    def ctrl_c(ctx: Context) -> Case:
        delay = float(ctx.rng.uniform(0.02, 1.2 * ctx.assets.compile_seconds))
        model = ctx.copy_model(pick(ctx.rng, ["qdq_small", "qdq_chain", "qonnx_cnv"]))
        argv = model_command(ctx.rng, model, searchable=False)
        case = Case("interrupts", f"Ctrl-C after {delay:.2f} s of {argv[0]}", argv, expect=EITHER,
                    interrupt=(signal.SIGINT, delay))
        return case

    def kill_during_compile(ctx: Context) -> Case:
        steps = ctx.assets.compile_steps
        # half the kills land in the last few steps, where the old folder is swapped for the new
        step = int(ctx.rng.integers(max(1, steps - 4) if ctx.rng.random() < 0.5 else 1, steps + 1))
        ctx.copy_project("dataflow", "previous")
        argv = ["compile", ctx.copy_model(), "--architecture", "dataflow", "-o", "previous"]
        case = Case("interrupts", f"SIGKILL before file-system change {step} of {steps} of a "
                    "compile onto its previous project", argv, expect=EITHER, crash_at=step, writable=("previous",))
        case.after = lambda work, result, run: survived_kill(work, argv, run)
        return case

    return [ctrl_c, kill_during_compile]


def survived_kill(work: Path, argv: list[str], run: Callable[[list[str]], Result]) -> tuple[str, str] | None:
    """After the kill: the old or the new project is whole; the next run leaves no staging folders."""
    lost = complete_project(work / "previous")
    if lost:
        return lost
    again = run(argv)
    staging = sorted(p.name for p in work.iterdir() if p.name.startswith(".previous."))
    if again.returncode == 0 and staging and not any(name in again.stderr for name in staging):
        return LEFTOVER, f"the next compile left {', '.join(staging[:3])} behind and did not report them"
    return None


# --- all families ---------------------------------------------------------------------------


def families() -> dict[str, list[Generator]]:
    """Family -> its generators, in a fixed order (a case index picks one deterministically)."""
    found = {family: [model_case(family, m) for m in MUTATORS[family]]
             for family in ("structure", "quantizers", "external", "resources", "files")}
    found["files"] += model_path_cases()
    found["options"] = option_cases()
    found["frames"] = [frames_case]
    found["projects"] = [project_case]
    found["outputs"] = output_cases()
    found["interrupts"] = interrupt_cases()
    return found
