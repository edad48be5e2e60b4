"""Build scripts of a layer-sequential engine: no DMA, the engine's four AXI4 masters on the PS HP
port, its AXI4-Lite registers on the PS master port. The generated Tcl runs under tclsh against
the stubbed Vitis/Vivado commands (tests/support/tcl_stubs.py), as the dataflow tests do."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.markers import needs_tclsh
from support.ports import stream_port

from hwcodesign.boards import Board, load_board
from hwcodesign.check.tcl import TclRun, run_tcl
from hwcodesign.codegen.build_scripts import BuildContext, render_build_scripts, validate_context
from hwcodesign.codegen.engine_project import ENGINE_MASTERS
from hwcodesign.codegen.project_format import register_offsets
from hwcodesign.codegen.project_schema import SchemaProblem
from hwcodesign.errors import HwcodesignError

NAME = "tinyengine"
TOP = "tinyengine_top"
BOARDS = ("ultra96v2", "pynqz2")  # a Zynq UltraScale+ PS and a Zynq-7000 PS
HP_PORT = {"zynq_ultrascale": "zynq_ps/S_AXI_HP{}_FPD", "zynq7": "zynq_ps/S_AXI_HP{}"}
PS_MASTER = {"zynq_ultrascale": "zynq_ps/M_AXI_HPM0_FPD", "zynq7": "zynq_ps/M_AXI_GP0"}
HP_ENABLE = {"zynq_ultrascale": "CONFIG.PSU__USE__S_AXI_GP{}", "zynq7": "CONFIG.PCW_USE_S_AXI_HP{}"}
HP_ENABLE_OFFSET = {"zynq_ultrascale": 2, "zynq7": 0}  # S_AXI_HP0_FPD is PSU__USE__S_AXI_GP2


def engine_context(board: Board) -> BuildContext:
    return BuildContext(name=NAME, top_function=TOP, board=board, inputs=(), outputs=(), hls_sources=("top.cpp",),
                        testbench=("tb.cpp", "tb_data"), masters=ENGINE_MASTERS)


def write_project(root: Path, ctx: BuildContext) -> Path:
    """The rendered scripts, the files they add (empty) and the IP export_design would leave."""
    for relative, text in render_build_scripts(ctx).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "hls" / "top.cpp").write_text("")
    (root / "hls" / "tb.cpp").write_text("")
    (root / "hls" / "tb_data").mkdir()
    (root / "hls" / "tb_data" / "params.bin").write_bytes(b"\0" * 8)
    ip = root / "hls" / f"{NAME}_hls" / "solution1" / "impl" / "ip"
    ip.mkdir(parents=True)
    (ip / "component.xml").write_text("<component/>")
    return root


def check_engine_block_design(run: TclRun, board: Board, top: str, masters: tuple[str, ...] = ENGINE_MASTERS) -> None:
    """What Vivado is told for a lone engine: no DMA, each master on its own SmartConnect and HP
    port (mem_smc -> HP0, mem_smc1 -> HP1, ...: the cost model's four ports), registers on ctrl_smc."""
    assert run.returncode == 0, run.stderr
    assert run.completed
    cells = run.cells()
    assert cells["accel"] == f"hwcodesign.org:hls:{top}:1.0"
    assert not [name for name, vlnv in cells.items() if "axi_dma" in vlnv]
    smcs = [f"mem_smc{index or ''}" for index in range(len(masters))]
    assert set(cells) == {"zynq_ps", "rst_pl", "accel", "ctrl_smc", *smcs}
    ps = run.props("zynq_ps")
    for index in range(len(masters)):
        assert ps[HP_ENABLE[board.ps_type].format(index + HP_ENABLE_OFFSET[board.ps_type])] == "1"
        mem = run.props(smcs[index])
        assert (mem["CONFIG.NUM_SI"], mem["CONFIG.NUM_MI"]) == ("1", "1")
    ctrl = run.props("ctrl_smc")
    assert (ctrl["CONFIG.NUM_SI"], ctrl["CONFIG.NUM_MI"]) == ("1", "1")

    nets = [tuple(args) for args in run.named("connect_bd_intf_net")]
    expected = [(PS_MASTER[board.ps_type], "ctrl_smc/S00_AXI"), ("ctrl_smc/M00_AXI", "accel/s_axi_control")]
    expected += [(f"accel/{master}", f"{smc}/S00_AXI") for smc, master in zip(smcs, masters)]
    expected += [(f"{smc}/M00_AXI", HP_PORT[board.ps_type].format(index)) for index, smc in enumerate(smcs)]
    assert sorted(nets) == sorted(expected)  # nothing else: no stream, no DMA port

    pins = " ".join(" ".join(args) for args in run.named("get_bd_pins")).split()
    for pin in ("accel/ap_clk", "accel/ap_rst_n", "ctrl_smc/aclk", "ctrl_smc/aresetn", "rst_pl/ext_reset_in",
                "rst_pl/slowest_sync_clk", *(f"{smc}/{pin}" for smc in smcs for pin in ("aclk", "aresetn"))):
        assert pin in pins, f"{pin} not connected"
    assert not [pin for pin in pins if pin.startswith("dma")]
    order = [call[0] for call in run.calls]
    assert order.index("connect_bd_intf_net") < order.index("assign_bd_address") < order.index("validate_bd_design")


@needs_tclsh
@pytest.mark.parametrize("board_name", BOARDS)
def test_engine_block_design(tmp_path: Path, board_name: str) -> None:
    board = load_board(board_name)
    root = write_project(tmp_path / "out", engine_context(board))
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    check_engine_block_design(run, board, TOP)
    [create] = run.named("create_project")
    assert create[0] == NAME and create[create.index("-part") + 1] == board.part
    script = (root / "vivado" / "block_design.tcl").read_text()
    assert "there is no DMA" in script and "axi_dma" not in script


@needs_tclsh
def test_engine_block_design_without_board_part(tmp_path: Path) -> None:
    board = dataclasses.replace(load_board("zcu104"), board_part=None)
    root = write_project(tmp_path / "out", engine_context(board))
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    check_engine_block_design(run, board, TOP)
    assert "WARNING: board zcu104 names no board_part" in run.stdout


@needs_tclsh
@pytest.mark.parametrize("board_name", BOARDS)
def test_engine_run_hls_tcl(tmp_path: Path, board_name: str) -> None:
    board = load_board(board_name)
    root = write_project(tmp_path / "out", engine_context(board))
    run = run_tcl(root / "hls" / "run_hls.tcl", tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.completed
    assert run.named("set_part") == [[board.part]]
    assert run.named("set_top") == [[TOP]]
    added = run.named("add_files")
    for args in added:
        path = Path(args[-1])
        assert path.is_absolute() and path.exists() and "shim" not in path.parts, path
    assert [Path(a[-1]).name for a in added if "-tb" not in a] == ["top.cpp"]
    assert [Path(a[-1]).name for a in added if "-tb" in a] == ["tb.cpp", "tb_data"]  # tb_data holds params.bin
    assert [call[0] for call in run.calls if call[0].endswith("_design")] == ["csim_design", "csynth_design",
                                                                               "export_design"]


def test_an_engine_needs_no_streams_but_a_dataflow_top_does() -> None:
    board = load_board("ultra96v2")
    validate_context(engine_context(board))
    with pytest.raises(HwcodesignError, match="at least one input and one output stream"):
        validate_context(dataclasses.replace(engine_context(board), masters=()))


@pytest.mark.parametrize("streams", [
    {"inputs": (stream_port("in0", 64),)},
    {"outputs": (stream_port("out0", 64),)},
    {"inputs": (stream_port("in0", 64),), "outputs": (stream_port("out0", 64),)},
])
def test_masters_and_streams_together_are_rejected(streams: dict) -> None:
    ctx = dataclasses.replace(engine_context(load_board("pynqz2")), **streams)
    with pytest.raises(HwcodesignError, match="through its AXI4 masters or through streams, not both"):
        validate_context(ctx)
    with pytest.raises(HwcodesignError, match="not both"):
        render_build_scripts(ctx)


@pytest.mark.parametrize("master", ["m_axi-gmem", "0gmem", "gmem in", ""])
def test_a_master_name_must_be_an_identifier(master: str) -> None:
    ctx = dataclasses.replace(engine_context(load_board("pynqz2")), masters=("m_axi_gmem_in", master))
    with pytest.raises(HwcodesignError, match=f"AXI4 master '{master}' is not an identifier"):
        render_build_scripts(ctx)


def test_engine_rendering_is_deterministic_and_differs_from_dataflow() -> None:
    board = load_board("kv260")
    ctx = engine_context(board)
    scripts = render_build_scripts(ctx)
    assert scripts == render_build_scripts(ctx)
    dataflow = render_build_scripts(dataclasses.replace(ctx, masters=(), inputs=(stream_port("in0", 64),),
                                                        outputs=(stream_port("out0", 64),)))
    assert scripts["hls/run_hls.tcl"] == dataflow["hls/run_hls.tcl"]  # the same HLS flow
    assert scripts["vivado/block_design.tcl"] != dataflow["vivado/block_design.tcl"]


# -- several engine instances -------------------------------------------------------------------

HP_CLOCK = {"zynq_ultrascale": "zynq_ps/saxihp{}_fpd_aclk", "zynq7": "zynq_ps/S_AXI_HP{}_ACLK"}


@needs_tclsh
@pytest.mark.parametrize("board_name", BOARDS)
def test_each_engine_instance_has_its_own_hp_port(tmp_path: Path, board_name: str) -> None:
    """Three instances: cells accel, accel1, accel2, each one's four masters on its own
    SmartConnect to HP0, HP1, HP2 (enabled and clocked), all three register files on ctrl_smc."""
    board = load_board(board_name)
    root = write_project(tmp_path / "out", dataclasses.replace(engine_context(board), instances=3))
    run = run_tcl(root / "vivado" / "block_design.tcl", tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.completed
    cells = run.cells()
    engines = ["accel", "accel1", "accel2"]
    smcs = ["mem_smc", "mem_smc1", "mem_smc2"]
    assert set(cells) == {"zynq_ps", "rst_pl", "ctrl_smc", *engines, *smcs}
    assert all(cells[cell] == f"hwcodesign.org:hls:{TOP}:1.0" for cell in engines)
    ps = run.props("zynq_ps")
    for port in range(3):
        key = HP_ENABLE[board.ps_type].format(port + HP_ENABLE_OFFSET[board.ps_type])  # GP2..GP4 / HP0..HP2
        assert ps[key] == "1", key
    assert run.props("ctrl_smc")["CONFIG.NUM_MI"] == "3"
    nets = [tuple(args) for args in run.named("connect_bd_intf_net")]
    expected = [(PS_MASTER[board.ps_type], "ctrl_smc/S00_AXI")]
    expected += [(f"ctrl_smc/M{i:02d}_AXI", f"{cell}/s_axi_control") for i, cell in enumerate(engines)]
    hp = HP_PORT[board.ps_type]
    for port, (cell, smc) in enumerate(zip(engines, smcs)):
        assert (run.props(smc)["CONFIG.NUM_SI"], run.props(smc)["CONFIG.NUM_MI"]) == (str(len(ENGINE_MASTERS)), "1")
        expected += [(f"{cell}/{master}", f"{smc}/S{index:02d}_AXI") for index, master in enumerate(ENGINE_MASTERS)]
        expected += [(f"{smc}/M00_AXI", hp.format(port))]
    assert sorted(nets) == sorted(expected)
    pins = " ".join(" ".join(args) for args in run.named("get_bd_pins")).split()
    for port, (cell, smc) in enumerate(zip(engines, smcs)):
        for pin in (f"{cell}/ap_clk", f"{cell}/ap_rst_n", f"{smc}/aclk", f"{smc}/aresetn",
                    HP_CLOCK[board.ps_type].format(port)):
            assert pin in pins, f"{pin} not connected"


def test_instances_are_one_to_four_and_engines_only() -> None:
    board = load_board("zcu102")
    validate_context(dataclasses.replace(engine_context(board), instances=4))
    for instances in (0, 5):
        with pytest.raises(HwcodesignError, match="an engine has 1 to 4 \\(one per HP port\\)"):
            validate_context(dataclasses.replace(engine_context(board), instances=instances))
    dataflow = dataclasses.replace(engine_context(board), masters=(), inputs=(stream_port("in0", 64),),
                                   outputs=(stream_port("out0", 64),), instances=2)
    with pytest.raises(HwcodesignError, match="a dataflow pipeline one"):
        validate_context(dataflow)


@pytest.mark.parametrize("cells", [["accel", "accel2"], ["accel1"], [], ["accel", "accel1", "accel2", "accel3", "accel4"]])
def test_project_json_names_the_engine_cells_in_order(cells: list[str]) -> None:
    from hwcodesign.codegen.project_schema import check_consistency

    meta = {"word_bits": 64, "inputs": [], "outputs": [], "registers": register_offsets(), "instructions": [{}],
            "layer_count": 1, "instances": cells}
    with pytest.raises(SchemaProblem, match="instances"):
        check_consistency(meta, sequential=True)
    check_consistency({**meta, "instances": ["accel", "accel1"]}, sequential=True)
