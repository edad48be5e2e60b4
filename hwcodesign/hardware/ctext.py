"""C++ text of the generated stages: config structs, constant tables, element types, and the
requantization stage every layer ends in.

One way to build a per-layer config: `struct(name, types, constants, nested)`, typedefs then
`static const int` constants, in the order given. Everything is decided here in exact integer
arithmetic, so the C++ wraps nowhere and agrees with the golden model bit for bit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hwcodesign.errors import HwcodesignError
from hwcodesign.ir.dybit import encode
from hwcodesign.ir.requant import Requant, signed_bits
from hwcodesign.ir.stream_layout import layout_of
from hwcodesign.ir.types import BipolarType, DyBitType, IntType, Tensor, WeightType

MAX_PRODUCT_BITS = 64  # the golden model's int64; wider would mean the golden model overflowed


class CodegenError(HwcodesignError):
    """The layer cannot be generated as mapped (a folding the stage does not support, ...)."""


@dataclass(frozen=True)
class Stage:
    """One dataflow process: C++ declarations (config struct, tables) and the call in the top;
    `files` the binary table files (name in hls/params/, bytes) its C++ build reads
    (`const_table`)."""

    name: str
    template: str  # the layer header it instantiates
    declarations: str
    call: str
    files: tuple[tuple[str, bytes], ...] = ()


def c_type(dtype: IntType) -> str:
    if isinstance(dtype, DyBitType):
        raise CodegenError(f"{dtype} weights are decoded in conv, linear and depthwise stages only")
    return f"ap_int<{dtype.bits}>" if dtype.signed else f"ap_uint<{dtype.bits}>"


def weight_memory(weight_type: WeightType, table: np.ndarray) -> tuple[str, np.ndarray, int]:
    """A MAC stage's weight memory: its C element type, its contents and WEIGHT_CODE_BITS.
    Integer weights are stored as they are (0); DyBit weights as their codes, which the stage
    decodes before the multiply (`hwc_weight` in hwc_common.h); bipolar weights as one bit,
    1 for +1 (code width 1, which no DyBit width has)."""
    if isinstance(weight_type, BipolarType):
        return "ap_uint<1>", (np.asarray(table) > 0).astype(np.int64), 1
    if isinstance(weight_type, DyBitType):
        return f"ap_uint<{weight_type.bits}>", encode(table, weight_type.bits), weight_type.bits
    return c_type(weight_type), table, 0


WEIGHT_MEMORY_CODES = {"bram": 0, "lutram": 1}
"""A MAC stage config's WEIGHT_MEMORY for each `Folding.weights`: `hwc_weight_memory` in
hwc_common.h, which binds the stage's weight ROMs there."""


def vec_type(tensor: Tensor, lanes: int) -> str:
    """The element type of a stream carrying `tensor` in words of `lanes` channels."""
    return f"hwc_vec<{c_type(tensor.dtype)}, {lanes}>"


def axis_adapter(name: str, tensor: Tensor, word_bits: int) -> str:
    """An AXI4-Stream adapter of hwc_axis.h (`hwc_axis_to_pixels`, `hwc_pixels_to_axis`)
    instantiated for `tensor`'s stream layout: how many of its pixels share a word comes from the
    layout's one definition (`ir/stream_layout.py`), not from C++ of its own."""
    layout = layout_of(tensor.shape, tensor.dtype, word_bits)
    return f"{name}<{word_bits}, {c_type(tensor.dtype)}, {tensor.channels}, {layout.pixels}, {layout.pixels_per_word}>"


def identifier(name: str, index: int) -> str:
    """A C identifier for layer `name` (ONNX names carry '/', '.', ':'); the index keeps it unique."""
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")[:40] or "layer"
    return f"l{index}_{cleaned}"


def magnitude(tensor: Tensor) -> int:
    """Largest |x - zero_point| of the tensor (what the stages accumulate)."""
    return max(tensor.zero_point - tensor.dtype.min, tensor.dtype.max - tensor.zero_point)


def int_list(values: np.ndarray, per_line: int = 32) -> str:
    """Integers as a C initializer body, a fixed number per line (deterministic, diff-friendly)."""
    flat = [str(v) for v in np.asarray(values, dtype=np.int64).ravel().tolist()]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n    ".join(lines)


def struct(name: str, types: dict[str, str], constants: dict[str, int], nested: str = "") -> str:
    """A stage's config: typedefs, then `static const int` constants, in the order given; `nested`
    (member structs, `nest`) comes first."""
    body = [f"    typedef {ctype} {alias};" for alias, ctype in types.items()]
    body += [f"    static const int {key} = {int(value)};" for key, value in constants.items()]
    return f"struct {name} {{\n{nested}" + "\n".join(body) + "\n};\n"


def nest(member: str) -> str:
    """A `struct` text indented to sit inside another config (a concat link's parts, a
    deformable conv's offset stage)."""
    return "    " + member.replace("\n", "\n    ").rstrip() + "\n"


def require(condition: bool, layer: str, message: str) -> None:
    if not condition:
        raise CodegenError(f"layer '{layer}': {message}")



def token_type(tensor: Tensor) -> str:
    """The stream element of a sparse tensor: one active site with all its channels."""
    return f"hwc_token<{c_type(tensor.dtype)}, {tensor.channels}>"


def max_sites(tensor: Tensor) -> int:
    return tensor.shape[2] * tensor.shape[3]


def pixel_constants(source: Tensor, out: Tensor, pe: int, layer: str) -> dict[str, int]:
    """Config entries of a per-pixel stage (PE channels per step)."""
    require(out.channels % pe == 0, layer, f"PE={pe} must divide {out.channels} channels")
    return {
        "IN_C": source.channels, "IN_ZP": source.zero_point, "OUT_C": out.channels, "PE": pe,
        "IN_PIXELS": source.shape[2] * source.shape[3], "OUT_PIXELS": out.shape[2] * out.shape[3],
    }


def token_constants(tensor: Tensor, pe: int, layer: str) -> dict[str, int]:
    """Config entries of a per-token stage on a sparse tensor (PE channels per step)."""
    require(tensor.channels % pe == 0, layer, f"PE={pe} must divide the {tensor.channels} channels")
    return {"OUT_C": tensor.channels, "PE": pe, "FOLDS": tensor.channels // pe, "MAX_SITES": max_sites(tensor)}


# -- requantization -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputStage:
    """What `hwc_requantize` needs: C++ typedef/constants for the config, and the table."""

    types: dict[str, str]
    constants: dict[str, int]
    table: str


def output_stage(requant: Requant, acc_bound: int, channels: int, out: IntType, table_name: str) -> OutputStage:
    """Config entries and the per-channel constant table for one requantization."""
    def per_channel(values: np.ndarray | None) -> np.ndarray:
        if values is None:
            return np.zeros(channels, np.int64)
        return np.broadcast_to(np.asarray(values, np.int64), (channels,))

    if requant.thresholds is not None:
        return threshold_stage(requant, acc_bound, channels, out, table_name)
    multiplier, shift = per_channel(requant.multiplier), per_channel(requant.shift)
    offset, negative = per_channel(requant.offset), per_channel(requant.negative_multiplier)
    negative_offset = per_channel(requant.negative_offset)
    identity = requant.is_identity()
    mult_bits, offset_bits = requant.multiplier_bits, requant.offset_bits
    largest_product = acc_bound * max(int(np.abs(multiplier).max()), int(np.abs(negative).max()))
    product_bits = signed_bits(largest_product + int(max(np.abs(offset).max(), np.abs(negative_offset).max())))
    if not identity and product_bits > MAX_PRODUCT_BITS:
        raise CodegenError(
            f"{table_name}: the requantization product needs {product_bits} bits "
            f"(accumulator bound {acc_bound}); at most {MAX_PRODUCT_BITS} are supported"
        )
    rows = np.stack([multiplier, shift, offset, negative, negative_offset], axis=1)
    entries = ",\n    ".join("{" + ", ".join(str(v) for v in row.tolist()) + "}" for row in rows)
    rq_type = f"hwc_rq<{mult_bits}, {offset_bits}>"
    table = f"static const {rq_type} {table_name}[{channels}] = {{\n    {entries}}};\n"
    constants = {
        "PROD_BITS": product_bits if not identity else signed_bits(acc_bound),
        "RQ_IDENTITY": int(identity),
        "RQ_SIGN": int(requant.is_sign()),
        "RQ_OFFSET": int(requant.offset is not None),
        "RQ_NEGATIVE": int(requant.negative_multiplier is not None),
        "OUT_ZP": requant.zero_point,
        "OUT_LO": requant.lo,
        "OUT_HI": requant.hi,
    }
    return OutputStage({"rq_t": rq_type, "out_t": c_type(out)}, constants, table)


def threshold_stage(requant: Requant, acc_bound: int, channels: int, out: IntType, table_name: str) -> OutputStage:
    """A threshold output stage (`requant.threshold_requant`): per channel a direction and the
    sorted thresholds (`hwc_thresholds` in hwc_common.h), OUT_LO the count's base."""
    assert requant.thresholds is not None
    steps, bits = requant.thresholds.shape[1], requant.threshold_bits
    thresholds = np.broadcast_to(requant.thresholds, (channels, steps))
    direction = np.broadcast_to(np.asarray(requant.multiplier, np.int64), (channels,))
    entries = ",\n    ".join("{{" + ", ".join(str(v) for v in row.tolist()) + f"}}, {d}}}"
                              for row, d in zip(thresholds, direction))
    rq_type = f"hwc_thresholds<{steps}, {bits}>"
    table = f"static const {rq_type} {table_name}[{channels}] = {{\n    {entries}}};\n"
    constants = {"PROD_BITS": max(signed_bits(acc_bound) + 1, bits), "RQ_IDENTITY": 0, "RQ_SIGN": 0, "RQ_OFFSET": 0,
                 "RQ_NEGATIVE": 0, "OUT_ZP": requant.zero_point, "OUT_LO": requant.lo, "OUT_HI": requant.hi}
    return OutputStage({"rq_t": rq_type, "out_t": c_type(out)}, constants, table)


def bias_type(bias: np.ndarray) -> str:
    """The narrowest signed type that holds a stage's bias table."""
    return f"ap_int<{signed_bits(int(np.abs(bias).max(initial=0)))}>"


@dataclass(frozen=True)
class ConstTables:
    """Declarations of constant tables, and the binary files a C++ build reads them from."""

    declarations: list[str]
    files: tuple[tuple[str, bytes], ...]


def native_dtype(ctype: str) -> np.dtype | None:
    """The native integer a C++ build stores an `ap_int<W>` / `ap_uint<W>` table element as: the
    narrowest of 8, 16, 32 and 64 bits, little-endian (`hwc_native` in hwc_common.h, which
    tests/codegen/test_table_files.py holds to this); None for wider types, kept as ap types."""
    match = re.fullmatch(r"ap_(u?)int<(\d+)>", ctype)
    if match is None:
        raise CodegenError(f"{ctype} is not an ap_int or ap_uint type")
    bits = int(match.group(2))
    if bits > 64:
        return None
    native = next(n for n in (8, 16, 32, 64) if bits <= n)
    return np.dtype(f"<{'u' if match.group(1) else 'i'}{native // 8}")


def const_table(element: str, ctype: str, name: str, values: np.ndarray) -> tuple[str, tuple[tuple[str, bytes], ...]]:
    """A constant table of `hwc_table_element<ctype>` elements (`element`, the C++ spelling),
    shaped as `values`: the initialised array Vitis reads and, for a C++ build (C simulation
    defines HWC_TABLES_FROM_FILES), the same table read from params/<name>.bin by the assembler
    (`HWC_FILE_TABLE`, shim/hwc_file_table.h), so g++ does not parse the values. Its file too."""
    dims = "".join(f"[{d}]" for d in values.shape)
    initialised = f"static const {element} {name}{dims} = {{\n    {int_list(values)}}};"
    dtype = native_dtype(ctype)
    if dtype is None:
        return initialised, ()
    info = np.iinfo(dtype)
    if values.size and (int(values.min()) < info.min or int(values.max()) > info.max):
        raise CodegenError(f"table {name}: values outside {ctype}")
    data = np.ascontiguousarray(values, dtype=dtype).tobytes()
    file = f"{name}.bin"
    text = (f"#ifdef HWC_TABLES_FROM_FILES\n"
            f'HWC_FILE_TABLE({element}, {name}, {dims}, "params/{file}", {len(data)});\n'
            f"#else\n{initialised}\n#endif")
    return text, ((file, data),)


def mac_tables(ident: str, types: dict[str, str], weights: np.ndarray, shape: tuple[int, int, int],
               bias: np.ndarray) -> ConstTables:
    """The const tables a MAC stage reads, typed by its config (`types`, its typedefs): weights
    [PE][depth][lanes] (as stored: integers or DyBit codes) and the bias per output channel.
    Both are declared with `hwc_table_element` (hwc_common.h): the config's type in synthesis, a
    native integer of the same values in a C++ build, read from a binary file (`const_table`)."""
    weight_text, weight_files = const_table(f"hwc_table_element<{ident}_config::weight_t>::type", types["weight_t"],
                                            f"{ident}_w", np.asarray(weights, np.int64).reshape(shape))
    bias_text, bias_files = const_table(f"hwc_table_element<{ident}_config::bias_t>::type", types["bias_t"],
                                        f"{ident}_b", np.asarray(bias, np.int64).reshape(-1))
    return ConstTables([weight_text, bias_text], weight_files + bias_files)
