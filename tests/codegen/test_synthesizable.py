"""Generated HLS C++ stays within synthesizable C++: no dynamic allocation, recursion or unbounded loops.

The checker is tests/support/synthesizable.py (its docstring lists the checks and their limits).
Every op case at every folding (support/op_suite.py: every case in one project per folding) and
the three example models (mapped onto the Ultra96-V2) pass the lexical checks and the compile
checks (restricted C++ with -Werror, call graph free of recursion), run in a thread pool.
The C-simulation tests compile every folding too, with -fno-exceptions -fno-rtti.
The last tests prove that the checker finds what it claims to, on tiny hand-written projects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from support.codegen import VARIANTS
from support.op_suite import OpSuite

from hwcodesign.backends import emit_project
from hwcodesign.backends.dataflow import map_pipeline
from hwcodesign.boards import load_board
from hwcodesign.check.synthesizable import GXX, compile_problems, lexical_problems, synthesis_problems
from hwcodesign.passes import load_onnx, optimize

needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ not found")
EXAMPLES = ("w8a8", "w4a8", "cnv")


def report(problems: list[str]) -> str:
    return "\n".join(problems)


def header_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in (root / "hls").rglob("*.h"))


@pytest.fixture(scope="module")
def pool() -> Iterator[ThreadPoolExecutor]:
    """Runs the compile checks: g++ works in subprocesses, so threads compile in parallel."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as executor:
        yield executor


@pytest.fixture(scope="module")
def op_compiles(op_suite: OpSuite, pool: ThreadPoolExecutor) -> dict[tuple[str, bool], Future[list[str]]]:
    """The op cases' compile checks, one per folding (every case in its project) and view (the
    C++ build's, and Vitis's with __SYNTHESIS__ defined), submitted at once and collected by the
    tests."""
    return {(variant, synthesis): pool.submit(compile_problems, op_suite.projects[variant].root,
                                              synthesis_view=synthesis)
            for synthesis in (False, True) for variant in VARIANTS}


@pytest.fixture(scope="module")
def example_projects(example_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthesizable_examples")
    board = load_board("ultra96v2")
    projects = {}
    for key in EXAMPLES:
        path = example_models[key]
        graph = optimize(load_onnx(path))
        projects[key] = emit_project(graph, map_pipeline(graph, board), root / key, name=path.stem,
                                     model_label=path.name).root
    return projects


@pytest.fixture(scope="module")
def example_checks(example_projects: dict[str, Path], pool: ThreadPoolExecutor) -> dict[str, Future[list[str]]]:
    """All checks on the example models, the largest project (slowest compile) first."""
    order = sorted(EXAMPLES, key=lambda key: -header_bytes(example_projects[key]))
    return {key: pool.submit(synthesis_problems, example_projects[key]) for key in order}


@pytest.mark.parametrize("variant", VARIANTS)
def test_op_case_sources_pass_lexical_checks(op_suite: OpSuite, variant: str) -> None:
    problems = lexical_problems(op_suite.projects[variant].root)
    assert problems == [], f"{variant}:\n{report(problems)}"


# Requesting op_compiles first starts the op cases' compiles before the (session-wide) example
# models are built, so g++ and the model training overlap; the op tests below then collect them.
@needs_gxx
@pytest.mark.usefixtures("op_compiles")
@pytest.mark.parametrize("key", EXAMPLES)
def test_example_model_is_synthesizable(example_checks: dict[str, Future[list[str]]], key: str) -> None:
    problems = example_checks[key].result()
    assert problems == [], f"{key}:\n{report(problems)}"


@needs_gxx
@pytest.mark.parametrize("variant", VARIANTS)
def test_op_cases_compile_as_restricted_cpp_without_recursion(
        op_compiles: dict[tuple[str, bool], Future[list[str]]], variant: str) -> None:
    problems = op_compiles[variant, False].result()
    assert problems == [], f"{variant}:\n{report(problems)}"


@needs_gxx
@pytest.mark.parametrize("variant", VARIANTS)
def test_op_cases_compile_as_vitis_reads_them(op_compiles: dict[tuple[str, bool], Future[list[str]]],
                                              variant: str) -> None:
    """The __SYNTHESIS__ branches: ap_int rings, tables and MAC loops where C simulation uses
    native integers."""
    problems = op_compiles[variant, True].result()
    assert problems == [], f"{variant} (synthesis view):\n{report(problems)}"


# -- the checker finds what it claims to --------------------------------------------------------

TOP = """\
// A hand-written stand-in for a generated project: the checker's own tests.
#include "layers/fake.h"

void fake_top(int in[8], int out[8], int n) {
#pragma HLS INTERFACE s_axilite port=return
    {body}
}
"""
CLEAN_HEADER = """\
// Loops of every accepted form, and the names in comments and strings must not count:
// new delete malloc( while goto std::vector throw "for (;;)"
#ifndef FAKE_H
#define FAKE_H

static const char *const fake_label = "malloc(1) while (1) goto std::string";

template <int N>
struct fake_config {
    static const int SIZE = N;
    static const int HALF = SIZE / 2;
};

template <class C, int STEP>
int fake_sum(const int in[8], int rows) {
    const int LAST = C::SIZE - 1;
    int sum = 0;
outer:
    for (int i = 0; i < C::HALF * 2; i += STEP) {
#pragma HLS PIPELINE II=1
        for (unsigned k = 0; k < LAST; k++) sum += in[k % 8] * i;
    }
    const int pixels = rows * C::SIZE;
    for (int p = 0; p < pixels; ++p) {
#pragma HLS LOOP_TRIPCOUNT min=0 max=64
        sum += in[p % 8];
    }
    return sum;
}

#endif
"""
CLEAN_BODY = "out[0] = fake_sum<fake_config<8>, 2>(in, n);"


def fake_project(root: Path, body: str = CLEAN_BODY, header: str = CLEAN_HEADER, before_top: str = "") -> Path:
    """A project folder the checker accepts: project.json, hls/top.cpp, hls/layers/fake.h."""
    (root / "hls" / "layers").mkdir(parents=True)
    (root / "project.json").write_text(json.dumps({"top_function": "fake_top"}))
    (root / "hls" / "layers" / "fake.h").write_text(header)
    (root / "hls" / "top.cpp").write_text(TOP.replace("#include", before_top + "#include").replace("{body}", body))
    return root


def marked_lines(root: Path, relative: str = "hls/top.cpp") -> list[str]:
    """'file:line' of every line carrying the marker comment /*HERE*/ in `relative`."""
    lines = (root / relative).read_text().splitlines()
    return [f"{relative}:{number}" for number, line in enumerate(lines, 1) if "/*HERE*/" in line]


def marked_line(root: Path, relative: str = "hls/top.cpp") -> str:
    (line,) = marked_lines(root, relative)
    return line


@needs_gxx
def test_clean_fake_project_passes(tmp_path: Path) -> None:
    """The baseline the negative tests modify: every check passes, the compiles included."""
    assert synthesis_problems(fake_project(tmp_path)) == []


@needs_gxx
def test_malloc_is_reported(tmp_path: Path) -> None:
    root = fake_project(tmp_path, before_top='extern "C" void *malloc(decltype(sizeof 0)); /*HERE*/\n',
                        body="int *scratch = (int *)malloc(8 * sizeof(int)); /*HERE*/\n    out[0] = scratch != 0;")
    problems = synthesis_problems(root)
    assert problems == [f"{line}: dynamic allocation (C allocator): 'malloc('" for line in marked_lines(root)]


@needs_gxx
def test_while_loop_is_reported(tmp_path: Path) -> None:
    root = fake_project(tmp_path, body="int i = 0;\n    while (i < n) { /*HERE*/\n        out[i % 8] = in[i % 8];\n"
                                       "        ++i;\n    }")
    problems = synthesis_problems(root)
    assert problems == [f"{marked_line(root)}: 'while' loop (only counted for loops are allowed)"]


@needs_gxx
def test_direct_recursion_is_reported(tmp_path: Path) -> None:
    root = fake_project(tmp_path, before_top="static int depth(int n) { /*HERE*/\n    return n <= 0 ? 0 : 1 + depth(n - 1);\n}\n",
                        body="out[0] = depth(n);")
    problems = synthesis_problems(root)
    assert problems == [f"{marked_line(root)}: recursion: int depth(int)"]  # where the function is defined


@needs_gxx
def test_mutual_recursion_through_templates_in_a_header_is_reported(tmp_path: Path) -> None:
    header = """\
template <int N> int fake_odd(int n);
template <int N> int fake_even(int n) { return n == 0 ? 1 : fake_odd<N>(n - 1); }
template <int N> int fake_odd(int n) { return n == 0 ? 0 : fake_even<N>(n - 1); }
int fake_unused(int n) { return n == 0 ? 0 : fake_unused(n - 1); }  // not reachable from the top
"""
    root = fake_project(tmp_path, header=header, body="out[0] = fake_even<3>(n);")
    problems = synthesis_problems(root)
    assert len(problems) == 1, report(problems)
    assert problems[0].startswith("hls/layers/fake.h:2: recursion: ")
    assert "fake_even" in problems[0] and "fake_odd" in problems[0] and "fake_unused" not in problems[0]


@needs_gxx
def test_call_through_function_pointer_is_reported(tmp_path: Path) -> None:
    root = fake_project(tmp_path, before_top="static int twice(int x) { return 2 * x; }\n",
                        body="int (*f)(int) = twice; /*HERE*/\n    out[0] = f(n);")
    problems = synthesis_problems(root)
    here = marked_line(root)
    call = f"hls/top.cpp:{int(here.rsplit(':', 1)[1]) + 1}"
    assert problems == [f"{here}: function pointer: '(*f)('",
                        f"{call}: call through a function pointer in void fake_top(int*, int*, int)"]


@pytest.mark.parametrize(("body", "message"), [
    ("int *p = new int[8]; /*HERE*/\n    out[0] = p[0];", "dynamic allocation (new): 'new'"),
    ("delete[] in; /*HERE*/", "dynamic deallocation (delete): 'delete'"),
    ("std::vector<int> v; /*HERE*/", "dynamic standard library type: 'std::vector'"),
    ("if (n < 0) throw n; /*HERE*/", "exceptions: 'throw'"),
    ("again: if (n-- > 0) goto again; /*HERE*/", "goto: 'goto'"),
    ("int i = 0;\n    do { /*HERE*/\n        ++i;\n    } while (i < n);", "'do' loop (only counted for loops are allowed)"),
    ("for (int i = 0; i != 8; ++i) out[i] = 0; /*HERE*/",
     "loop header 'for (int i = 0; i != 8; ++i)' is not 'for (int v = init; v < bound; ++v)'"),
    ("for (int i = 7; i >= 0; --i) out[i] = 0; /*HERE*/",
     "loop header 'for (int i = 7; i >= 0; --i)' is not 'for (int v = init; v < bound; ++v)'"),
    ("for (int i = 0; i < 8; ++i) { /*HERE*/\n        if (in[i] < 0) i = 8;\n    }",
     "loop variable 'i' is assigned in the body of 'for (int i = 0; i < 8; ++i)'"),
    ("for (int i = 0; i < n; ++i) { /*HERE*/\n#pragma HLS PIPELINE II=1\n        out[i % 8] = 0;\n    }",
     "loop 'for (int i = 0; i < n; ++i)' has a variable trip count but no '#pragma HLS LOOP_TRIPCOUNT' after its header"),
    ("for (int i = in[0]; i < 8; ++i) out[i] = 0; /*HERE*/",
     "loop 'for (int i = in[0]; i < 8; ++i)' has a variable trip count but no '#pragma HLS LOOP_TRIPCOUNT' after its header"),
])
def test_lexical_problem_is_reported(tmp_path: Path, body: str, message: str) -> None:
    root = fake_project(tmp_path, body=body)
    assert lexical_problems(root) == [f"{marked_line(root)}: {message}"]


def test_include_outside_the_project_and_hls_headers_is_reported(tmp_path: Path) -> None:
    root = fake_project(tmp_path, before_top="#include <ap_int.h>\n#include <vector> /*HERE*/\n"
                                             '#include "shim/hls_stream.h"\n')
    problems = lexical_problems(root)
    line = int(marked_line(root).rsplit(":", 1)[1])
    assert problems == [
        f"hls/top.cpp:{line}: #include <vector>: not a project header or one of ap_axi_sdata.h, ap_int.h, hls_stream.h",
        f'hls/top.cpp:{line + 1}: #include "shim/hls_stream.h": not a project header or one of '
        "ap_axi_sdata.h, ap_int.h, hls_stream.h",
    ]


@needs_gxx
@pytest.mark.parametrize("call_graph", [True, False])
def test_compiler_warning_fails_the_compile_check(tmp_path: Path, call_graph: bool) -> None:
    root = fake_project(tmp_path, body="int unused = n; /*HERE*/\n    out[0] = in[0];")
    problems = compile_problems(root, call_graph=call_graph)
    assert len(problems) == 1 and problems[0].startswith("hls/top.cpp:0: does not compile as restricted C++")
    assert f"{marked_line(root)}:9: error: unused variable 'unused' [-Werror=unused-variable]" in problems[0]
