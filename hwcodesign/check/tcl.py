"""Run generated Tcl under tclsh with every Vitis/Vivado command stubbed and recorded.

The stubs record each vendor command with its arguments, so tests check what the tools would
have been told (part, clock, files, PS configuration) rather than the script text, and
`hwcodesign check` runs each of a project's scripts to the end: a Tcl error, a misspelt or new
vendor command, or a script that stops early shows up without Vitis or Vivado installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hwcodesign.codegen.build_scripts import HLS_SOLUTION, hls_project_name

TCLSH = shutil.which("tclsh")
TCLSH_MISSING = "tclsh not installed (Debian/Ubuntu package tcl; `make tools`)"
SEP = "\x1f"

# Every vendor command the scripts may call. Anything else that is not a Tcl builtin reaches
# `unknown`, which fails the run: a misspelt or new command shows up here first.
RECORD_ONLY = [
    # Vitis HLS
    "set_top", "open_solution", "set_part", "create_clock", "csim_design", "csynth_design",
    "cosim_design", "export_design",
    # Vivado
    "update_ip_catalog", "create_bd_design", "apply_bd_automation", "connect_bd_intf_net",
    "connect_bd_net", "assign_bd_address", "validate_bd_design", "save_bd_design", "add_files",
    "update_compile_order", "close_project", "launch_runs", "wait_on_run", "reset_run",
]
ECHO_LAST_ARG = [
    "get_bd_cells", "get_bd_pins", "get_bd_intf_pins", "get_files", "get_runs", "get_ipdefs",
]

PRELUDE = r"""
# ---- stub Vitis HLS / Vivado for tclsh --------------------------------------------------------
set ::stub_log [open [lindex $argv 1] w]
fconfigure $::stub_log -translation lf
array set ::props {}
set ::proj_dir ""
set ::proj_name ""

proc _record {args} {
    set fields {}
    foreach a $args { lappend fields [string map [list \n " " \x1f " "] $a] }
    puts $::stub_log [join $fields \x1f]
    flush $::stub_log
}
proc _last {arglist} { return [lindex $arglist end] }
proc _env {name {default ""}} {
    if {[info exists ::env($name)]} { return $::env($name) }
    return $default
}

rename exit _real_exit
proc exit {{code 0}} { _record exit $code; close $::stub_log; _real_exit $code }

rename unknown _tcl_unknown
proc unknown {cmd args} {
    puts stderr "UNSTUBBED COMMAND: $cmd $args"
    # where the script called it, in the form Tcl's own error traces use
    for {set level [info frame]} {$level > 0} {incr level -1} {
        set frame [info frame $level]
        if {[dict exists $frame file] && [dict get $frame file] eq [file normalize [lindex $::argv 0]]} {
            puts stderr "    (file \"[dict get $frame file]\" line [dict get $frame line])"
            break
        }
    }
    _record UNSTUBBED $cmd
    _real_exit 97
}

foreach cmd {@RECORD_ONLY@} {
    proc $cmd {args} "_record $cmd {*}\$args; return {}"
}
foreach cmd {@ECHO_LAST_ARG@} {
    proc $cmd {args} "_record $cmd {*}\$args; return \[_last \$args\]"
}

proc get_board_parts {args} {
    _record get_board_parts {*}$args
    if {[_env STUB_NO_BOARD_FILES] eq "1"} { return {} }
    return [_last $args]
}
proc current_project {args} { _record current_project {*}$args; return ::project }
proc current_fileset {args} { _record current_fileset {*}$args; return sources_1 }

proc create_project {name dir args} {
    _record create_project $name $dir {*}$args
    set ::proj_dir $dir
    set ::proj_name $name
    return $name
}
proc open_project {args} {
    _record open_project {*}$args
    set target [_last $args]
    if {[file extension $target] eq ".xpr"} {
        set ::proj_dir [file dirname $target]
        set ::proj_name [file rootname [file tail $target]]
    }
    return $target
}
proc create_bd_cell {args} {
    set vlnv ""
    set i [lsearch -exact $args -vlnv]
    if {$i >= 0} { set vlnv [lindex $args [expr {$i + 1}]] }
    _record create_bd_cell {*}$args
    _record CELL [_last $args] $vlnv
    return [_last $args]
}
proc set_property {args} {
    _record set_property {*}$args
    if {[lindex $args 0] eq "-dict"} {
        set pairs [lindex $args 1]
        set objects [lindex $args 2]
    } else {
        set pairs [list [lindex $args 0] [lindex $args 1]]
        set objects [lindex $args 2]
    }
    foreach {key value} $pairs {
        set ::props($objects,[string toupper $key]) $value
        _record PROP $objects $key $value
    }
    return {}
}
proc get_property {name object} {
    _record get_property $name $object
    set key [string toupper $name]
    if {[info exists ::props($object,$key)]} { return $::props($object,$key) }
    # The PS reports the PL clock it really generates; the stub says it met the request.
    set requested [string map {
        __ACT_FREQMHZ __FREQMHZ
        PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ PCW_FPGA0_PERIPHERAL_FREQMHZ
    } $key]
    if {$requested ne $key && [info exists ::props($object,$requested)]} {
        return $::props($object,$requested)
    }
    switch -- $key {
        PROGRESS { if {[_env STUB_FAIL_RUN] eq $object} { return 42% } else { return 100% } }
        STATUS {
            if {[_env STUB_FAIL_RUN] eq $object} { return "$object ERROR" }
            return [expr {$object eq "synth_1" ? "synth_design Complete!" : "write_bitstream Complete!"}]
        }
        DIRECTORY {
            if {$object eq "::project"} { return $::proj_dir }
            return [file join $::proj_dir $::proj_name.runs $object]
        }
        TOP { return system_wrapper }
        STATS.WNS { return 0.125 }
    }
    error "stub get_property: no value for $name of $object"
}
proc make_wrapper {args} {
    _record make_wrapper {*}$args
    set wrapper [file join $::proj_dir $::proj_name.gen sources_1 bd system hdl system_wrapper.v]
    file mkdir [file dirname $wrapper]
    close [open $wrapper w]
    return $wrapper
}

source [lindex $argv 0]
_record __END__
close $::stub_log
"""


def _prelude_text() -> str:
    return PRELUDE.replace("@RECORD_ONLY@", " ".join(RECORD_ONLY)).replace(
        "@ECHO_LAST_ARG@", " ".join(ECHO_LAST_ARG)
    )


@dataclass
class TclRun:
    """Outcome of one script under the stubs: exit code, output and the recorded calls."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    def named(self, command: str) -> list[list[str]]:
        """Arguments of every call to `command`, in order."""
        return [call[1:] for call in self.calls if call[0] == command]

    def props(self, obj: str) -> dict[str, str]:
        """Properties the script set on `obj` (last write wins), keys as written."""
        return {key: value for o, key, value in self.named("PROP") if o == obj}

    def cells(self) -> dict[str, str]:
        """Block-design cell name -> VLNV."""
        return {name: vlnv for name, vlnv in self.named("CELL")}

    @property
    def completed(self) -> bool:
        return bool(self.calls) and self.calls[-1][0] in {"__END__", "exit"}


def run_tcl(script: Path, tmp_path: Path, env: dict[str, str] | None = None) -> TclRun:
    """Run `script` under tclsh with the stub prelude, from an unrelated working directory
    (`tmp_path` holds the prelude, the call log and that directory)."""
    if TCLSH is None:
        raise FileNotFoundError(TCLSH_MISSING)
    prelude = tmp_path / "stub_prelude.tcl"
    prelude.write_text(_prelude_text())
    log = tmp_path / f"{script.stem}.calls"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [TCLSH, str(prelude), str(script), str(log)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=20,
    )
    lines = log.read_text().splitlines() if log.exists() else []
    return TclRun(proc.returncode, proc.stdout, proc.stderr, [line.split(SEP) for line in lines])


def fake_hls_export(root: Path, name: str) -> Path:
    """What Vitis's `export_design` leaves behind (an empty IP), so block_design.tcl finds the IP."""
    ip_dir = root / "hls" / hls_project_name(name) / HLS_SOLUTION / "impl" / "ip"
    ip_dir.mkdir(parents=True, exist_ok=True)
    (ip_dir / "component.xml").write_text("<component/>")
    return ip_dir


def fake_vivado_outputs(root: Path, name: str, handoff_under: str | None = "gen") -> None:
    """The project, bitstream and hardware handoff a finished Vivado run leaves (empty files), so
    build_bitstream.tcl runs to its end; Vivado 2022+ writes the handoff under .gen, older under .srcs."""
    proj = root / "vivado" / name
    proj.mkdir(parents=True, exist_ok=True)
    (proj / f"{name}.xpr").write_text("")
    impl = proj / f"{name}.runs" / "impl_1"
    impl.mkdir(parents=True, exist_ok=True)
    (impl / "system_wrapper.bit").write_bytes(b"BIT")
    if handoff_under is not None:
        hwh = proj / f"{name}.{handoff_under}" / "sources_1" / "bd" / "system" / "hw_handoff"
        hwh.mkdir(parents=True, exist_ok=True)
        (hwh / "system.hwh").write_text("<hwh/>")
