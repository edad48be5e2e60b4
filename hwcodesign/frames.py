"""Input frames from a user's .npy/.npz file: the one loader behind `--inputs` and `csim INPUT`.

A frames file comes from the user's own scripts, so anything can be in it: a truncated save, a
pickle, a string array, NaNs from a broken preprocessing step, values of the wrong type. Every
problem is reported as one `FramesError` naming the file and what is wrong, before any work
starts; nothing is ever unpickled (`allow_pickle=False`: loading a pickle runs its code).
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from hwcodesign.errors import HwcodesignError
from hwcodesign.ir.types import Tensor

# numpy kinds a frame may hold: signed, unsigned integers and floats (bool, complex, strings,
# objects and the like have no meaning as pixel values)
NUMERIC_KINDS = "iuf"
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive of .npy files


class FramesError(HwcodesignError):
    """A frames file that cannot be read or does not match the model's inputs."""


def load_frames(path: str | Path, inputs: Sequence[Tensor]) -> dict[str, np.ndarray]:
    """Integer frames (N, C, H, W) by input tensor name from `path`: a .npy for a one-input
    model, else an .npz by input tensor name. A single frame (C, H, W) gains its N axis; floats
    are quantized with the input's scale and zero point (as QuantizeLinear does); integers must
    already lie in the input's type. Raises FramesError naming the file and the problem."""
    by_name = {tensor.name: tensor for tensor in inputs}
    return frames_by_input(Path(path), list(by_name), lambda path, name, value: checked_frames(path, by_name[name], value))


def frames_by_input(path: Path, names: Sequence[str],
                    check: Callable[[Path, str, np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
    """The checked array of each input in `names` from `path` (a .npy for one input, else an .npz
    by input name), all with one frame count."""
    arrays = read_arrays(path)
    if None in arrays:
        if len(names) != 1:
            raise FramesError(f"{path}: the model has {len(names)} inputs; pass an .npz keyed by input tensor name "
                              f"({', '.join(names)})")
        arrays = {names[0]: arrays[None]}
    frames = {}
    for name in names:
        if name not in arrays:
            raise FramesError(f"{path} has no array for input '{name}' (it holds: "
                              f"{', '.join(str(key) for key in arrays) or 'nothing'})")
        frames[name] = check(path, name, arrays[name])
    counts = {name: value.shape[0] for name, value in frames.items()}
    if len(set(counts.values())) > 1:
        raise FramesError(f"{path}: the inputs have different frame counts "
                          f"({', '.join(f'{name}: {count}' for name, count in counts.items())})")
    return frames


def read_arrays(path: Path) -> Mapping[str | None, np.ndarray]:
    """The arrays in `path`: {None: array} for a .npy, {name: array} for an .npz."""
    check_regular_file(path)
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(NPY_MAGIC))
            if not magic.startswith((NPY_MAGIC, ZIP_MAGIC)):  # numpy would try it as a pickle
                raise FramesError(f"{path} is not a readable .npy or .npz file (it does not start like one)")
            stream.seek(0)
            loaded = np.load(stream, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    return {name: loaded[name] for name in loaded.files}
            return {None: loaded}
    except FramesError:
        raise
    except MemoryError:
        raise FramesError(f"{path} is not a readable .npy or .npz file: it declares arrays too large to load "
                          "(a damaged header?)") from None
    except ValueError as error:
        if "pickle" in str(error):
            raise FramesError(f"{path} holds pickled Python objects, which are never loaded "
                              "(save plain numeric arrays with numpy.save or numpy.savez)") from None
        raise FramesError(f"{path} is not a readable .npy or .npz file ({error})") from None
    except Exception as error:
        # whatever numpy or zipfile raise while reading is about the file (a header numpy's
        # tokenizer cannot parse, a zip member flagged as encrypted, a bad CRC ...)
        raise FramesError(f"{path} is not a readable .npy or .npz file ({type(error).__name__}: {error})") from None


def check_regular_file(path: Path) -> None:
    """Refuse, by name, a path that is missing, a directory or a device before opening it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FramesError(f"{path}: no such file") from None
    except OSError as error:
        raise FramesError(f"{path}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        raise FramesError(f"{path} is a directory, not a .npy or .npz frames file")
    if not stat.S_ISREG(mode):
        raise FramesError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise FramesError(f"{path} is empty")


def load_float_frames(path: str | Path, shapes: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
    """Float frames (N, ...) by input name from `path` for a float model whose inputs have
    `shapes` (batch first): a .npy for a one-input model, else an .npz by input name; what
    `hwcodesign quantize` calibrates on. Raises FramesError naming the file and the problem."""
    return frames_by_input(Path(path), list(shapes), lambda path, name, value: frame_array(
        f"{path}: input '{name}'", value, tuple(shapes[name][1:])).astype(np.float32))


def frame_array(where: str, value: np.ndarray, frame: tuple[int, ...]) -> np.ndarray:
    """`value` as frames (N, *frame) (one frame gains its N axis): numeric, nonempty, finite. A
    frame whose last axes are 1 may come without them, as the model's own input shape has it: an
    MLP's (N, 784) for the (N, 784, 1, 1) the compiler streams."""
    if value.dtype.kind not in NUMERIC_KINDS:
        raise FramesError(f"{where} holds {value.dtype} values; frames must be integers or floats")
    short = frame
    while len(short) > 1 and short[-1] == 1:
        short = short[:-1]
    if short != frame and value.ndim in (len(short), len(short) + 1) and tuple(value.shape[-len(short):]) == short:
        value = value.reshape((1 if value.ndim == len(short) else value.shape[0],) + frame)
    if value.ndim == len(frame):
        value = value[None]
    if value.ndim != len(frame) + 1 or tuple(value.shape[1:]) != frame:
        raise FramesError(f"{where} must be (N, {', '.join(map(str, frame))}) or "
                          f"({', '.join(map(str, frame))}), got {value.shape}")
    if value.shape[0] == 0:
        raise FramesError(f"{where} holds no frames (N = 0)")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        bad = "NaN" if np.isnan(value).any() else "infinite"
        raise FramesError(f"{where} has {bad} values; frames must be finite")
    return value


def checked_frames(path: Path, tensor: Tensor, value: np.ndarray) -> np.ndarray:
    """`value` as int64 frames of `tensor`, or FramesError saying what is wrong with it."""
    where = f"{path}: input '{tensor.name}'"
    value = frame_array(where, value, tuple(tensor.shape[1:]))
    if value.dtype.kind == "f":
        return tensor.quantize(value)
    if not tensor.dtype.contains(value):
        raise FramesError(f"{where} has values outside {tensor.dtype} ({tensor.dtype.min}..{tensor.dtype.max}): "
                          f"found {int(value.min())}..{int(value.max())}; pass floats to have them quantized")
    return value.astype(np.int64)

