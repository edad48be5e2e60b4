"""Constant tables from binary files in the C++ build (`const_table`, shim/hwc_file_table.h).

A MAC stage's weights and bias are declared twice in its params header: initialised, as Vitis
reads them, and under HWC_TABLES_FROM_FILES (C simulation's g++ flags) as the bytes of
params/<table>.bin, which the assembler includes so g++ never parses the values. The C-simulation
tests run on the files (every op case, bit-exact with the golden model); these tests hold the two
forms to the same values, the file's element type to the C++ build's, and a damaged file to a
clear refusal.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from support.op_suite import OpSuite

from hwcodesign.codegen.csim import COMPILER, SHIM_HEADERS, compile_flags, include_flags
from hwcodesign.codegen.project import Project, ProjectError
from hwcodesign.codegen.render import templates_dir
from hwcodesign.hardware.ctext import native_dtype

needs_gxx = pytest.mark.skipif(shutil.which(COMPILER) is None, reason="g++ not found")
FILE_TABLE = re.compile(r'HWC_FILE_TABLE\(([^,]+), (\w+), ((?:\[\d+\])+), "params/(\w+\.bin)", (\d+)\);')
INITIALISED = r"static const {element} {name}{dims} = {{\n(.*?)}};"


@needs_gxx
def test_native_dtype_is_the_element_the_cxx_build_stores() -> None:
    """`native_dtype` (Python, writes the files) against `hwc_table_element` (C++, reads them):
    size and signedness for widths on both sides of every native size."""
    widths = (1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64)
    lines = [f'std::printf("{kind}<{w}> %zu %d\\n", sizeof(hwc_table_element<{kind}<{w}> >::type), '
             f"int(hwc_table_element<{kind}<{w}> >::type(-1) < 0));" for kind in ("ap_int", "ap_uint") for w in widths]
    source = "#include <cstdio>\n#include \"layers/hwc_common.h\"\nint main() {\n" + "\n".join(lines) + "\nreturn 0; }\n"
    hls = templates_dir() / "hls"
    with tempfile.TemporaryDirectory() as scratch:
        binary = Path(scratch) / "sizes"
        built = subprocess.run([COMPILER, "-std=c++14", "-x", "c++", "-", "-o", str(binary), "-I", str(hls / "shim"),
                                "-I", str(hls), "-Wno-unknown-pragmas"], input=source, text=True, capture_output=True)
        assert built.returncode == 0, built.stderr
        output = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(output) == 2 * len(widths)
    for line in output:
        ctype, size, signed = line.split()
        dtype = native_dtype(ctype)
        assert dtype is not None and (dtype.itemsize, dtype.kind == "i") == (int(size), signed == "1"), line
    assert native_dtype("ap_int<65>") is None  # kept as an ap type, initialised in both builds


def test_both_forms_of_every_mac_table_hold_the_same_values(op_suite: OpSuite) -> None:
    """Every MAC table of every op case, at every folding: the file's bytes, read as the native
    type, equal the initialiser's integers, and the size in the header is the file's."""
    checked = 0
    for project in op_suite.projects.values():
        params = project.root / "hls" / "params"
        for header in sorted(params.glob("*.h")):
            text = header.read_text()
            for element, name, dims, file, size in FILE_TABLE.findall(text):
                shape = tuple(int(d) for d in re.findall(r"\d+", dims))
                body = re.search(INITIALISED.format(element=re.escape(element), name=name, dims=re.escape(dims)),
                                 text, re.S)
                assert body is not None, f"{header.name}: {name} has no initialised form"
                values = np.array([int(v) for v in re.findall(r"-?\d+", body.group(1))], np.int64).reshape(shape)
                ctype = re.search(rf"typedef (ap_u?int<\d+>) {'weight_t' if name.endswith('_w') else 'bias_t'};",
                                  text).group(1)
                data = (params / file).read_bytes()
                assert len(data) == int(size)
                assert np.array_equal(np.frombuffer(data, native_dtype(ctype)).reshape(shape), values), name
                checked += 1
    assert checked >= 2 * 20  # weights and bias of every MAC case, at each folding


@needs_gxx
def test_a_damaged_table_file_is_refused(op_suite: OpSuite, tmp_path: Path) -> None:
    """A table file of another size: the project refuses it by name before g++ runs; and were it
    built anyway, the assembler stops on it, naming the file and the table."""
    root = tmp_path / "project"
    shutil.copytree(op_suite.projects["serial"].root, root)
    table = sorted((root / "hls" / "params").glob("*_w.bin"))[0]
    table.write_bytes(table.read_bytes()[:-1])
    with pytest.raises(ProjectError, match=re.escape(f"{table.name} has")):
        Project(root).verify()
    hls = root / "hls"
    command = [COMPILER, *compile_flags(None), *include_flags(hls, None), "-c", "-o", str(tmp_path / "top.o"),
               str(hls / "top.cpp")]
    command.remove("-shared")
    built = subprocess.run(command, cwd=hls, capture_output=True, text=True)
    assert built.returncode != 0
    assert f"params/{table.name} is not the size of table {table.stem}" in built.stderr


def test_the_shim_ships_the_table_reader() -> None:
    assert "hwc_file_table.h" in SHIM_HEADERS
    assert (templates_dir() / "hls" / "shim" / "hwc_file_table.h").is_file()
