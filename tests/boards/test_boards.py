"""Board descriptions: shipped files load, match the data sheets, and bad input fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwcodesign.boards import (
    Board,
    Resources,
    available_boards,
    boards_dir,
    format_board_table,
    load_board,
)
from hwcodesign.errors import BoardError

# Written out from the data sheets (DS891 for Zynq UltraScale+, DS987 for the K26 SOM, DS190 for
# Zynq-7000), not copied from the TOML files, so a wrong edit to a board file fails here.
# BRAM18K is twice the data sheet's 36 Kb block count.
EXPECTED = {
    #             part                    ps_type            dsp   bram18k uram  lut      ff
    "ultra96v2": ("xczu3eg-sbva484-1-i", "zynq_ultrascale", 360, 432, 0, 70_560, 141_120),
    "zcu102": ("xczu9eg-ffvb1156-2-e", "zynq_ultrascale", 2_520, 1_824, 0, 274_080, 548_160),
    "zcu104": ("xczu7ev-ffvc1156-2-e", "zynq_ultrascale", 1_728, 624, 96, 230_400, 460_800),
    "kv260": ("xck26-sfvc784-2LV-c", "zynq_ultrascale", 1_248, 288, 64, 117_120, 234_240),
    "pynqz2": ("xc7z020clg400-1", "zynq7", 220, 280, 0, 53_200, 106_400),
}

VALID_TOML = """\
name = "tiny"
display_name = "Tiny"
part = "xc7z010clg400-1"
board_part = "example.com:tiny:part0:1.0"
ps_type = "zynq7"
clock_mhz = 100
ddr_bandwidth_gbps = 1.0
pynq_image = "none"
source = "test"

[resources]
dsp = 80
bram18k = 120
uram = 0
lut = 17600
ff = 35200

[cpu]
core = "Cortex-A9"
cores = 2
clock_mhz = 667
fp32_flops_per_cycle = 4
sustained_fraction = 0.1
dispatch_us = 50
assumed = ["sustained_fraction", "dispatch_us"]

[cpu.sources]
core = "test core"
cores = "test cores"
clock_mhz = "test clock"
fp32_flops_per_cycle = "test rate"
sustained_fraction = "test share"
dispatch_us = "test dispatch"
"""

# The processor family of each board's PS (DS891/DS987: quad Cortex-A53; DS190: dual Cortex-A9).
CPUS = {
    "ultra96v2": ("Cortex-A53", 4),
    "zcu102": ("Cortex-A53", 4),
    "zcu104": ("Cortex-A53", 4),
    "kv260": ("Cortex-A53", 4),
    "pynqz2": ("Cortex-A9", 2),
}


def write(tmp_path: Path, text: str, name: str = "board.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_matches_data_sheet(name: str) -> None:
    part, ps_type, dsp, bram18k, uram, lut, ff = EXPECTED[name]
    board = load_board(name)
    assert board.name == name
    assert board.part == part
    assert board.ps_type == ps_type
    assert board.resources == Resources(dsp=dsp, bram18k=bram18k, uram=uram, lut=lut, ff=ff)
    assert board.board_part and board.pynq_image and board.source and board.display_name
    assert board.clock_mhz > 0 and board.ddr_bandwidth_gbps > 0


@pytest.mark.parametrize("name", sorted(CPUS))
def test_board_has_its_cpu_with_every_figure_sourced(name: str) -> None:
    cpu = load_board(name).cpu
    assert (cpu.core, cpu.cores) == CPUS[name]
    assert [key for key, _ in cpu.sources] == [
        "core", "cores", "clock_mhz", "fp32_flops_per_cycle", "sustained_fraction", "dispatch_us"]
    for key, source in cpu.sources:
        # an assumption says so in its source; a fact names a data sheet or manual
        assert source.startswith("Assumption") == (key in cpu.assumed), (name, key)
    # the share of peak and the dispatch cost are never published figures
    assert {"sustained_fraction", "dispatch_us"} <= set(cpu.assumed)
    assert 0 < cpu.sustained_fraction <= 1 and cpu.dispatch_us > 0
    assert cpu.sustained_flops == pytest.approx(
        cpu.clock_mhz * 1e6 * cpu.fp32_flops_per_cycle * cpu.sustained_fraction)


def test_shipped_files_are_exactly_the_expected_boards() -> None:
    stems = sorted(path.stem for path in boards_dir().glob("*.toml"))
    assert stems == sorted(EXPECTED)


def test_available_boards_sorted_by_dsp() -> None:
    boards = available_boards()
    assert [b.name for b in boards] == ["pynqz2", "ultra96v2", "kv260", "zcu104", "zcu102"]
    assert all(isinstance(b, Board) for b in boards)


def test_as_dict_in_field_order() -> None:
    resources = load_board("zcu104").resources
    assert resources.as_dict() == {
        "dsp": 1728, "bram18k": 624, "uram": 96, "lut": 230400, "ff": 460800,
    }
    assert list(resources.as_dict()) == ["dsp", "bram18k", "uram", "lut", "ff"]


def test_table_lists_all_boards_aligned() -> None:
    table = format_board_table(available_boards())
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["board", "part", "PS"]
    assert "DDR GB/s" in lines[0] and "PYNQ image" in lines[0]
    assert len(lines) == 2 + len(EXPECTED)
    for name, (part, *_rest) in EXPECTED.items():
        row = next(line for line in lines if line.startswith(name + " "))
        assert part in row
    # Right-aligned DSP column: every row's DSP count ends at the header's DSP end.
    dsp_end = lines[0].index("DSP") + len("DSP")
    for line, board in zip(lines[2:], available_boards()):
        assert line[:dsp_end].endswith(str(board.resources.dsp))


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("ULTRA96V2", "ultra96v2"),
        ("ultra96-v2", "ultra96v2"),
        ("Ultra96-V2", "ultra96v2"),
        ("pynq-z2", "pynqz2"),
        ("PYNQ_Z2", "pynqz2"),
        ("KV260", "kv260"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert load_board(alias).name == name


def test_load_by_path() -> None:
    board = load_board(str(boards_dir() / "zcu102.toml"))
    assert board.name == "zcu102"


def test_unknown_name_lists_available_boards() -> None:
    with pytest.raises(BoardError) as info:
        load_board("zedboard")
    message = str(info.value)
    assert "zedboard" in message
    for name in EXPECTED:
        assert name in message


def test_missing_path_is_board_error(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="not found"):
        load_board(str(tmp_path / "nope.toml"))


def test_valid_temp_file_loads(tmp_path: Path) -> None:
    board = load_board(str(write(tmp_path, VALID_TOML)))
    assert board.name == "tiny"
    assert board.resources.lut == 17600
    assert board.clock_mhz == 100.0
    assert board.cpu.core == "Cortex-A9" and board.cpu.clock_mhz == 667.0
    assert board.cpu.assumed == ("sustained_fraction", "dispatch_us")
    assert board.cpu.source("clock_mhz") == "test clock"


def test_board_part_is_optional(tmp_path: Path) -> None:
    text = VALID_TOML.replace('board_part = "example.com:tiny:part0:1.0"\n', "")
    assert load_board(str(write(tmp_path, text))).board_part is None


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('part = "xc7z010clg400-1"\n', "", "part"),  # missing key
        ("dsp = 80\n", "", "resources.dsp"),  # missing resource
        ("dsp = 80", "dsp = -1", "resources.dsp"),  # negative count
        ("lut = 17600", 'lut = "17600"', "resources.lut"),  # wrong type
        ("ff = 35200", "ff = 35200.0", "resources.ff"),  # float count
        ("uram = 0", "uram = true", "resources.uram"),  # bool is not a count
        ("clock_mhz = 100", 'clock_mhz = "fast"', "clock_mhz"),
        ("clock_mhz = 100", "clock_mhz = 0", "clock_mhz"),
        ("ddr_bandwidth_gbps = 1.0", "ddr_bandwidth_gbps = -2.0", "ddr_bandwidth_gbps"),
        ('ps_type = "zynq7"', 'ps_type = "versal"', "ps_type"),
        ('name = "tiny"', "name = 5", "name"),
        ('source = "test"', 'source = "test"\nsorce = "typo"', "sorce"),  # unknown key
        ("ff = 35200", "ff = 35200\nbram36k = 60", "resources.bram36k"),
        ("clock_mhz = 667", "clock_mhz = 0", "cpu.clock_mhz"),
        ("cores = 2", "cores = 2.0", "cpu.cores"),
        ("dispatch_us = 50", "dispatch_us = -1", "cpu.dispatch_us"),
        ("sustained_fraction = 0.1", "sustained_fraction = 1.5", "cpu.sustained_fraction"),
        ("fp32_flops_per_cycle = 4\n", "", "cpu.fp32_flops_per_cycle"),
        ("dispatch_us = 50", "dispatch_us = 50\nflops = 9", "cpu.flops"),  # unknown key
        ('assumed = ["sustained_fraction", "dispatch_us"]', 'assumed = ["speed"]', "cpu.assumed"),
        ('clock_mhz = "test clock"\n', "", "cpu.sources.clock_mhz"),  # a figure without its source
        ('dispatch_us = "test dispatch"', 'dispatch_us = ""', "cpu.sources.dispatch_us"),
        ('core = "test core"', 'core = "test core"\nram = "x"', "cpu.sources.ram"),
    ],
)
def test_malformed_file_names_file_and_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in VALID_TOML
    path = write(tmp_path, VALID_TOML.replace(old, new, 1))
    with pytest.raises(BoardError) as info:
        load_board(str(path))
    message = str(info.value)
    assert str(path) in message
    assert f"'{key}'" in message


def test_missing_cpu_table(tmp_path: Path) -> None:
    text = VALID_TOML.split("[cpu]")[0]
    with pytest.raises(BoardError, match="'cpu': missing"):
        load_board(str(write(tmp_path, text)))


def test_table_shows_the_cpu() -> None:
    table = format_board_table([load_board("pynqz2"), load_board("kv260")])
    assert "2x Cortex-A9 650 MHz" in table and "4x Cortex-A53 1333 MHz" in table


def test_missing_resources_table(tmp_path: Path) -> None:
    text = VALID_TOML.split("[resources]")[0]
    with pytest.raises(BoardError, match="'resources'"):
        load_board(str(write(tmp_path, text)))


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "name = \n")
    with pytest.raises(BoardError) as info:
        load_board(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("path", "said"), [("/dev/null", "is not a regular file"), ("/tmp", "is a directory"),
                                            ("/nonexistent/b.toml", "not found")])
def test_a_board_path_that_is_no_file_says_what_it_is(path: str, said: str) -> None:
    with pytest.raises(BoardError, match=f"board file {path} {said}"):
        load_board(path)
