"""Build scripts: the generated Tcl runs end to end under tclsh against stubbed Vitis/Vivado
commands, and the Makefile fails clearly without the Xilinx tools.

The stubs record every vendor command with its arguments; the tests then check what the tools
would have been told (part, clock, PS configuration, DMAs, paths) rather than the script text,
so a reworded template still passes and a wrong value or an unknown command still fails.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.markers import needs_tclsh
from support.ports import stream_port

from hwcodesign.boards import Board, available_boards, load_board
from hwcodesign.check.tcl import TclRun, fake_hls_export, run_tcl
from hwcodesign.check.tcl import fake_vivado_outputs as fake_vivado
from hwcodesign.codegen.build_scripts import (
    BuildContext,
    clock_period_ns,
    plan_dmas,
    render_build_scripts,
)
from hwcodesign.codegen.csim import SHIM_HEADERS
from hwcodesign.codegen.render import static_file
from hwcodesign.errors import HwcodesignError

MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make not installed")

NAME = "tinynet"
TOP = "tinynet_top"

# Stream port layouts: (input widths, output widths). Cover 1/1, more inputs than outputs and
# more outputs than inputs, and every word width.
PORT_LAYOUTS = {
    "1in_1out": ((32,), (32,)),
    "2in_1out": ((64, 128), (32,)),
    "1in_2out": ((128,), (64, 32)),
}

BOARDS = [board.name for board in available_boards()]

def make_context(board: Board, layout: str = "1in_1out") -> BuildContext:
    in_bits, out_bits = PORT_LAYOUTS[layout]
    return BuildContext(
        name=NAME,
        top_function=TOP,
        board=board,
        inputs=tuple(stream_port(f"in{i}", bits) for i, bits in enumerate(in_bits)),
        outputs=tuple(stream_port(f"out{i}", bits) for i, bits in enumerate(out_bits)),
        hls_sources=("top.cpp",),
        testbench=("tb.cpp", "tb_data"),
    )


def write_project(root: Path, ctx: BuildContext) -> Path:
    """The rendered scripts plus the files they reference (empty), as a compiled project."""
    for rel, text in render_build_scripts(ctx).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    hls = root / "hls"
    for rel in ctx.hls_sources + ("tb.cpp",):
        (hls / rel).write_text("")
    (hls / "shim").mkdir()
    for header in SHIM_HEADERS:
        (hls / "shim" / header).write_text(static_file(f"hls/shim/{header}"))
    (hls / "tb_data").mkdir(exist_ok=True)
    (hls / "tb_data" / "input0.txt").write_text("0\n")
    return root


def export_hls_ip(root: Path) -> Path:
    return fake_hls_export(root, NAME)


def fake_vivado_outputs(root: Path, handoff_under: str | None = "gen") -> None:
    fake_vivado(root, NAME, handoff_under)


def _option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# ------------------------------------------------------------------------------------------------
# Python side
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mhz", "expected"), [(200, "5"), (100, "10"), (250, "4"), (300, "3.333"), (150, "6.667")]
)
def test_clock_period_is_formatted_deterministically(mhz: float, expected: str) -> None:
    assert clock_period_ns(mhz) == expected


def test_dmas_pair_input_i_with_output_i() -> None:
    ins = (stream_port("in0", 32), stream_port("in1", 64))
    outs = (stream_port("out0", 128),)
    dmas = plan_dmas(ins, outs)
    assert [(d.name, d.mm2s, d.s2mm) for d in dmas] == [
        ("dma0", ins[0], outs[0]),
        ("dma1", ins[1], None),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "my-net"}, "not a C identifier"),
        ({"hls_sources": ("shim/ap_int.h",)}, "shim headers are for g"),
        ({"testbench": ("../tb.cpp",)}, "relative path"),
        ({"outputs": ()}, "at least one input and one output"),
        ({"outputs": (stream_port("in0", 32),)}, "appears twice"),
    ],
)
def test_bad_contexts_are_rejected(change: dict, message: str) -> None:
    base = make_context(load_board("pynqz2")).__dict__ | change
    with pytest.raises(HwcodesignError, match=message):
        render_build_scripts(BuildContext(**base))


def test_a_port_of_a_word_width_the_dma_lacks_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="not 48"):
        stream_port("in0", 48)


def test_rendering_is_deterministic() -> None:
    ctx = make_context(load_board("zcu104"), "2in_1out")
    assert render_build_scripts(ctx) == render_build_scripts(ctx)


# ------------------------------------------------------------------------------------------------
# run_hls.tcl
# ------------------------------------------------------------------------------------------------


@needs_tclsh
@pytest.mark.parametrize("board_name", BOARDS)
def test_run_hls_tcl(tmp_path: Path, board_name: str) -> None:
    board = load_board(board_name)
    root = write_project(tmp_path / "out", make_context(board))
    run = run_tcl(root / "hls" / "run_hls.tcl", tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.completed

    assert run.named("set_part") == [[board.part]]
    [clock] = run.named("create_clock")
    assert float(_option(clock, "-period")) == pytest.approx(1000.0 / board.clock_mhz, abs=5e-4)
    assert run.named("set_top") == [[TOP]]
    assert run.named("open_project") == [["-reset", f"{NAME}_hls"]]
    assert run.named("open_solution")[0][:2] == ["-reset", "solution1"]

    added = run.named("add_files")
    assert added, "no add_files calls"
    for args in added:
        path = Path(args[-1])
        assert path.is_absolute() and path.exists(), f"add_files path missing: {path}"
        assert "shim" not in path.parts
        assert "-std=c++14" in " ".join(args) or path.name == "tb_data"
    design = [Path(a[-1]).name for a in added if "-tb" not in a]
    testbench = [Path(a[-1]).name for a in added if "-tb" in a]
    assert design == ["top.cpp"]
    assert testbench == ["tb.cpp", "tb_data"]

    steps = [c[0] for c in run.calls if c[0].endswith("_design")]
    assert steps == ["csim_design", "csynth_design", "export_design"]
    [export] = run.named("export_design")
    assert _option(export, "-format") == "ip_catalog"
    vlnv = ":".join(_option(export, flag) for flag in ("-vendor", "-library", "-ipname", "-version"))
    assert vlnv == f"hwcodesign.org:hls:{TOP}:1.0"


@needs_tclsh
@pytest.mark.parametrize(
    ("env", "steps"),
    [
        ({"HWC_COSIM": "1"}, ["csim_design", "csynth_design", "cosim_design", "export_design"]),
        ({"HWC_HLS_STEPS": "csynth export"}, ["csynth_design", "export_design"]),
        ({"HWC_HLS_STEPS": "csim"}, ["csim_design"]),
    ],
)
def test_run_hls_tcl_steps_follow_the_environment(
    tmp_path: Path, env: dict[str, str], steps: list[str]
) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("ultra96v2")))
    run = run_tcl(root / "hls" / "run_hls.tcl", tmp_path, env={"HWC_COSIM": "", **env})
    assert run.returncode == 0, run.stderr
    assert [c[0] for c in run.calls if c[0].endswith("_design")] == steps


@needs_tclsh
def test_run_hls_tcl_rejects_an_unknown_step(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("ultra96v2")))
    run = run_tcl(root / "hls" / "run_hls.tcl", tmp_path, env={"HWC_HLS_STEPS": "csim synth"})
    assert run.returncode != 0
    assert "unknown step 'synth'" in run.stderr


@needs_tclsh
def test_stub_harness_fails_on_an_unstubbed_command(tmp_path: Path) -> None:
    """The checks above mean something only if a typo'd vendor command fails the run."""
    script = tmp_path / "typo.tcl"
    script.write_text("set_part xc7z020clg400-1\ncreate_clok -period 10\n")
    run = run_tcl(script, tmp_path)
    assert run.returncode == 97
    assert "UNSTUBBED COMMAND: create_clok" in run.stderr
    assert not run.completed


# ------------------------------------------------------------------------------------------------
# block_design.tcl
# ------------------------------------------------------------------------------------------------

PS_IP = {
    "zynq_ultrascale": ("xilinx.com:ip:zynq_ultra_ps_e", "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"),
    "zynq7": ("xilinx.com:ip:processing_system7", "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"),
}
PS_HP_ENABLE = {
    "zynq_ultrascale": ("CONFIG.PSU__USE__S_AXI_GP2", "CONFIG.PSU__USE__M_AXI_GP0"),
    "zynq7": ("CONFIG.PCW_USE_S_AXI_HP0", "CONFIG.PCW_USE_M_AXI_GP0"),
}


@needs_tclsh
@pytest.mark.parametrize("layout", list(PORT_LAYOUTS))
@pytest.mark.parametrize("board_name", BOARDS)
def test_block_design_tcl(tmp_path: Path, board_name: str, layout: str) -> None:
    check_block_design(tmp_path, load_board(board_name), layout)


@needs_tclsh
@pytest.mark.parametrize("board_name", ["pynqz2", "zcu104"])
def test_block_design_tcl_without_board_part(tmp_path: Path, board_name: str) -> None:
    """A user's board file may name only a part: no board_part, no board preset."""
    board = dataclasses.replace(load_board(board_name), board_part=None)
    run = check_block_design(tmp_path, board, "1in_1out")
    assert not run.named("get_board_parts")
    assert "WARNING: board" in run.stdout


def check_block_design(tmp_path: Path, board: Board, layout: str) -> TclRun:
    """Run block_design.tcl for `board` and check everything Vivado would be told."""
    ctx = make_context(board, layout)
    root = write_project(tmp_path / "out", ctx)
    ip_dir = export_hls_ip(root)
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.completed

    [create] = run.named("create_project")
    assert create[0] == NAME
    assert _option(create, "-part") == board.part
    project_props = run.props("::project")
    assert project_props.get("board_part") == board.board_part  # None when the board has none
    assert Path(project_props["ip_repo_paths"]).resolve() == ip_dir.resolve()

    cells = run.cells()
    vlnv, clock_key = PS_IP[board.ps_type]
    assert cells["zynq_ps"] == vlnv
    ps_props = run.props("zynq_ps")
    assert float(ps_props[clock_key]) == board.clock_mhz
    for key in PS_HP_ENABLE[board.ps_type]:
        assert ps_props[key] == "1"
    _check_ps_automation(run, board)

    assert cells["accel"] == f"hwcodesign.org:hls:{TOP}:1.0"
    _check_dmas(run, ctx)
    _check_clocks_and_resets(run, ctx)

    for args in run.named("add_files"):
        assert Path(args[-1]).exists(), f"add_files path missing: {args[-1]}"
    order = [c[0] for c in run.calls]
    assert order.index("assign_bd_address") < order.index("validate_bd_design")
    assert order.index("validate_bd_design") < order.index("save_bd_design") < order.index("make_wrapper")
    return run


def _check_ps_automation(run: TclRun, board: Board) -> None:
    """Board preset applied iff there is a board part; Zynq-7000 always gets DDR/FIXED_IO ports."""
    automation = run.named("apply_bd_automation")
    rule = PS_IP[board.ps_type][0].replace(":ip:", ":bd_rule:")
    configs = [_option(a, "-config") for a in automation if _option(a, "-rule") == rule]
    if board.ps_type == "zynq7":
        assert len(configs) == 1 and 'make_external "FIXED_IO, DDR"' in configs[0]
    elif not board.board_part:
        assert configs == []
    preset = f'apply_board_preset "{1 if board.board_part else 0}"'
    assert all(preset in config for config in configs)
    assert bool(configs) == (board.board_part is not None or board.ps_type == "zynq7")


def _check_dmas(run: TclRun, ctx: BuildContext) -> None:
    """One simple-mode DMA per stream pair, widths equal to the ports, streams wired to accel."""
    dmas = sorted(name for name, vlnv in run.cells().items() if vlnv.startswith("xilinx.com:ip:axi_dma"))
    count = max(len(ctx.inputs), len(ctx.outputs))
    assert dmas == [f"dma{i}" for i in range(count)]
    nets = {tuple(args) for args in run.named("connect_bd_intf_net")}
    for i in range(count):
        props = run.props(f"dma{i}")
        assert props["CONFIG.c_include_sg"] == "0"
        assert props["CONFIG.c_sg_length_width"] == "26"
        has_in, has_out = i < len(ctx.inputs), i < len(ctx.outputs)
        assert props["CONFIG.c_include_mm2s"] == str(int(has_in))
        assert props["CONFIG.c_include_s2mm"] == str(int(has_out))
        if has_in:
            port = ctx.inputs[i]
            assert props["CONFIG.c_m_axis_mm2s_tdata_width"] == str(port.word_bits)
            assert (f"dma{i}/M_AXIS_MM2S", f"accel/{port.port}") in nets
        else:
            assert "CONFIG.c_m_axis_mm2s_tdata_width" not in props
        if has_out:
            port = ctx.outputs[i]
            assert props["CONFIG.c_s_axis_s2mm_tdata_width"] == str(port.word_bits)
            assert (f"accel/{port.port}", f"dma{i}/S_AXIS_S2MM") in nets
        else:
            assert "CONFIG.c_s_axis_s2mm_tdata_width" not in props
        assert any(f"dma{i}/S_AXI_LITE" in net for net in nets)

    ctrl = run.props("ctrl_smc")
    mem = run.props("mem_smc")
    assert ctrl["CONFIG.NUM_MI"] == str(1 + count)
    assert mem["CONFIG.NUM_SI"] == str(len(ctx.inputs) + len(ctx.outputs))
    assert any("accel/s_axi_control" in net for net in nets)


def _check_clocks_and_resets(run: TclRun, ctx: BuildContext) -> None:
    """Every clock and reset pin of accel and the DMAs is on a net (validate would fail otherwise)."""
    connected = " ".join(" ".join(args) for args in run.named("get_bd_pins"))
    expected = ["accel/ap_clk", "accel/ap_rst_n", "rst_pl/ext_reset_in", "ctrl_smc/aclk", "mem_smc/aclk"]
    for dma in plan_dmas(ctx.inputs, ctx.outputs):
        expected += [f"{dma.name}/s_axi_lite_aclk", f"{dma.name}/axi_resetn"]
        if dma.mm2s:
            expected.append(f"{dma.name}/m_axi_mm2s_aclk")
        if dma.s2mm:
            expected.append(f"{dma.name}/m_axi_s2mm_aclk")
    for pin in expected:
        assert pin in connected.split(), f"{pin} not connected"


@needs_tclsh
@pytest.mark.parametrize("board_name", BOARDS)
def test_ip_repo_is_where_run_hls_exports(tmp_path: Path, board_name: str) -> None:
    """The path block_design.tcl adds must be the one run_hls.tcl's export_design writes."""
    root = write_project(tmp_path / "out", make_context(load_board(board_name)))
    export_hls_ip(root)
    hls = run_tcl(root / "hls" / "run_hls.tcl", tmp_path)
    bd = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    [project] = hls.named("open_project")
    solution = hls.named("open_solution")[0][1]
    exported = root / "hls" / project[-1] / solution / "impl" / "ip"
    assert Path(bd.props("::project")["ip_repo_paths"]).resolve() == exported.resolve()


@needs_tclsh
def test_block_design_stops_without_the_hls_ip(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("kv260")))
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    assert run.returncode != 0
    assert "make hls" in run.stderr
    assert not run.named("create_project")


@needs_tclsh
def test_block_design_stops_without_board_files(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("pynqz2")))
    export_hls_ip(root)
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path, env={"STUB_NO_BOARD_FILES": "1"})
    assert run.returncode != 0
    assert "tul.com.tw:pynq-z2:part0:1.0 are not installed" in run.stderr


# ------------------------------------------------------------------------------------------------
# build_bitstream.tcl
# ------------------------------------------------------------------------------------------------


@needs_tclsh
@pytest.mark.parametrize("handoff_under", ["gen", "srcs"])
@pytest.mark.parametrize("board_name", BOARDS)
def test_build_bitstream_tcl(tmp_path: Path, board_name: str, handoff_under: str) -> None:
    root = write_project(tmp_path / "out", make_context(load_board(board_name)))
    fake_vivado_outputs(root, handoff_under)
    run = run_tcl(root / "vivado" / "build_bitstream.tcl", tmp_path, env={"HWC_JOBS": "3"})
    assert run.returncode == 0, run.stderr
    assert run.completed

    [opened] = run.named("open_project")
    assert Path(opened[0]) == root / "vivado" / NAME / f"{NAME}.xpr"
    launches = run.named("launch_runs")
    assert [a[0] for a in launches] == ["synth_1", "impl_1"]
    assert _option(launches[1], "-to_step") == "write_bitstream"
    assert _option(launches[1], "-jobs") == "3"
    assert [a[0] for a in run.named("wait_on_run")] == ["synth_1", "impl_1"]

    bit, hwh = root / "output" / f"{NAME}.bit", root / "output" / f"{NAME}.hwh"
    assert bit.read_bytes() == b"BIT"
    assert hwh.read_text() == "<hwh/>"
    assert bit.stem == hwh.stem == NAME


@needs_tclsh
def test_build_bitstream_fails_clearly_without_the_handoff(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("zcu102")))
    fake_vivado_outputs(root, handoff_under=None)
    run = run_tcl(root / "vivado" / "build_bitstream.tcl", tmp_path)
    assert run.returncode != 0
    assert "system.hwh not found" in run.stderr
    assert not (root / "output" / f"{NAME}.bit").exists()


@needs_tclsh
def test_build_bitstream_fails_when_implementation_does_not_complete(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("zcu102")))
    fake_vivado_outputs(root)
    run = run_tcl(root / "vivado" / "build_bitstream.tcl", tmp_path, env={"STUB_FAIL_RUN": "impl_1"})
    assert run.returncode != 0
    assert "impl_1 did not complete" in run.stderr
    assert not (root / "output").exists()


# ------------------------------------------------------------------------------------------------
# Makefile
# ------------------------------------------------------------------------------------------------

XILINX_TOOLS = ("vitis_hls", "vitis-run", "vivado")


def _path_without_xilinx_tools() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    keep = [d for d in dirs if d and not any((Path(d) / tool).exists() for tool in XILINX_TOOLS)]
    return os.pathsep.join(keep)


def run_make(root: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path if path is not None else _path_without_xilinx_tools()}
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(root), *args],
        env=env, capture_output=True, text=True, timeout=60,
    )


@needs_make
def test_make_n_csim(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("pynqz2")))
    result = run_make(root, "-n", "csim")
    assert result.returncode == 0, result.stderr
    assert "-Ihls/shim -Ihls" in result.stdout
    assert "hls/top.cpp hls/tb.cpp -o build/csim" in result.stdout
    assert "cd hls && ../build/csim" in result.stdout


@needs_make
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_make_csim_runs_the_testbench_from_hls(tmp_path: Path) -> None:
    """The testbench reads tb_data/ relative to its working directory, which must be hls/."""
    root = write_project(tmp_path / "out", make_context(load_board("pynqz2")))
    (root / "hls" / "top.cpp").write_text("int twice(int x) { return 2 * x; }\n")
    (root / "hls" / "tb.cpp").write_text(
        "#include <cstdio>\nint twice(int);\n"
        "int main() { FILE* f = std::fopen(\"tb_data/input0.txt\", \"r\"); int v = -1;\n"
        "  if (!f || std::fscanf(f, \"%d\", &v) != 1) return 2;\n"
        "  std::printf(\"tb ok %d\\n\", twice(v)); return 0; }\n"
    )
    result = run_make(root, "csim")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tb ok 0" in result.stdout


@needs_make
def test_make_hls_without_vitis_names_the_tool(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("ultra96v2")))
    result = run_make(root, "hls")
    assert result.returncode != 0
    assert "error: vitis_hls not found on PATH" in result.stderr
    assert "settings64.sh" in result.stderr


@needs_make
def test_make_bitstream_without_vivado_names_the_tool(tmp_path: Path) -> None:
    root = write_project(tmp_path / "out", make_context(load_board("ultra96v2")))
    result = run_make(root, "bitstream")
    assert result.returncode != 0
    assert "error: vivado not found on PATH" in result.stderr
    assert "settings64.sh" in result.stderr
    assert "vitis_hls" not in result.stderr  # Vivado is checked before the HLS step runs


@needs_make
def test_make_hls_accepts_vitis_run(tmp_path: Path) -> None:
    """Vitis 2024.2+ ships vitis-run instead of vitis_hls; a fake one records its arguments."""
    root = write_project(tmp_path / "out", make_context(load_board("kv260")))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vitis-run"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "$@" > "$(dirname "$0")/args"\n'
        'echo "$HWC_HLS_STEPS" >> "$(dirname "$0")/args"\n'
    )
    fake.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{_path_without_xilinx_tools()}"
    result = run_make(root, "hls", "HLS_STEPS=csynth export", path=path)
    assert result.returncode == 0, result.stderr
    args, steps = (bin_dir / "args").read_text().splitlines()
    assert args == "--mode hls --tcl hls/run_hls.tcl"
    assert steps == "csynth export"
