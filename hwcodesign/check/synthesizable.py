"""Does a generated project's HLS C++ stay within synthesizable C++?

`synthesis_problems(project_root)` checks the synthesizable sources of a project (`hls/top.cpp`,
`hls/top.h`, `hls/params/*.h`, `hls/layers/*.h`, and for the layer-sequential engine
`hls/engine_config.h`, `hls/engine_layer.h`, `hls/engine/*.h`; not the testbench, host code or
g++ shim) and
returns one line per problem, each starting with `file:line:` relative to the project root:

1. Restricted C++: `g++ -std=c++14 -c -O0 -fno-inline -fno-exceptions -fno-rtti -Wall -Werror
   -Wno-unused-label -Wno-unknown-pragmas -I hls/shim -I hls hls/top.cpp` compiles. That is a
   superset of the `-fsyntax-only` check (the same front end, plus code generation, which the
   call graph needs); `call_graph=False` runs the cheaper `-fsyntax-only` variant instead. Unused
   labels are not errors: named loops are the HLS idiom for loop reports and pragmas.
   This is the C++ build's view; the `#ifdef __SYNTHESIS__` branches Vitis reads instead are
   compiled by `compile_problems(..., synthesis_view=True)` (see there why not by default).
2. No dynamic allocation, exceptions or unsupported library, found lexically after comments and
   string literals are blanked: `new`, `delete` (but `= delete`), calls of `malloc`/`calloc`/
   `realloc`/`free`/`alloca` (also `__builtin_...`), `std::` containers/strings/smart pointers/
   `std::function`, `throw`/`try`/`catch`, `goto`, `virtual`, `dynamic_cast`/`typeid`, `asm`,
   function-pointer declarators `(*name)(`, and `#include` of anything but the project's own
   synthesizable headers (quoted names, resolved like g++ does: the including file's folder,
   then `hls/`) and `ap_int.h`, `hls_stream.h`, `ap_axi_sdata.h`.
3. No recursion: GCC's `-fcallgraph-info` (GCC >= 10) writes the translation unit's call graph
   (a VCG `.ci` file). At -O0 with -fno-inline every call is an edge, templates appear once per
   instantiation. Every cycle (strongly connected component, or a self-call) reachable from the
   top function (`top_function` in project.json) that contains a function defined in a
   synthesizable source is reported, as is a call through a pointer (`__indirect_call`) made by
   such a function. Cycles entirely inside the g++ shim or the standard library are not: those
   stand-ins are replaced by the Xilinx headers in synthesis.
4. Bounded loops, a lexical check: no `while`/`do`; every `for` header is `for (int v = init;
   v < bound; ++v)` (`v++` and `v += step` also accepted; `unsigned` too); `v` is not assigned
   in the body (`v =`, `v op=`, `++v`, `v--`, ...); and a loop whose init, bound or step is not
   a compile-time constant has `#pragma HLS LOOP_TRIPCOUNT` among the pragma lines directly
   after its header.

Limits of the lexical checks (4, and 2 in part): they read tokens, not an AST. An expression is
"constant" if it consists of literals, operators, qualified names (`C::OUT_H`, `T::width`,
`typename C::A::IN_C`, `hwc_max<A, B>::value`), and names that are a non-type template parameter,
an enumerator, or a `const`/`constexpr` integer whose initializers are all constant -- collected
over all synthesizable files without regard to scope, and dropped if the same name is also
declared as a non-const integer anywhere. Member access (`a.b`, `a->b`), subscripts and calls make
an expression non-constant, even if they are constexpr. A loop body without braces is taken up to
the first `;` (or closing brace) at nesting depth 0, which misreads `if ... else` bodies. The loop
variable could still be changed through a reference or pointer (`f(v)`, `int &r = v`), and a
preprocessor macro could hide any construct (the check runs on the unexpanded text), and a
member function that happens to be called `free(` would be reported. The
compile-based checks see only what the top instantiates, which is exactly what synthesis sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

HLS_HEADERS = frozenset({"ap_int.h", "hls_stream.h", "ap_axi_sdata.h"})
GXX = shutil.which("g++")
BASE_FLAGS = ("-std=c++14", "-fno-exceptions", "-fno-rtti", "-Wall", "-Werror", "-Wno-unused-label",
              "-Wno-unknown-pragmas", "-I", "hls/shim", "-I", "hls")
CALL_GRAPH_FLAGS = ("-c", "-O0", "-fno-inline", "-fcallgraph-info")
MAX_ERROR_CHARS = 3000

STD_NAMES = (
    "vector", "deque", "list", "forward_list", "map", "multimap", "set", "multiset", "unordered_map",
    "unordered_set", "unordered_multimap", "unordered_multiset", "queue", "priority_queue", "stack",
    "string", "wstring", "basic_string", "string_view", "stringstream", "istringstream", "ostringstream",
    "function", "shared_ptr", "unique_ptr", "weak_ptr", "make_shared", "make_unique", "allocator",
    "any", "thread", "mutex", "cout", "cerr", "cin",
)
FORBIDDEN: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), message) for pattern, message in (
    (r"\bnew\b", "dynamic allocation (new)"),
    (r"\bdelete\b", "dynamic deallocation (delete)"),
    (r"(?<!\w)(?:__builtin_)?(?:malloc|calloc|realloc|free|alloca|aligned_alloc|posix_memalign)\s*\(",
     "dynamic allocation (C allocator)"),
    (r"\bstd\s*::\s*(?:" + "|".join(STD_NAMES) + r")\b", "dynamic standard library type"),
    (r"\b(?:throw|try|catch)\b", "exceptions"),
    (r"\bgoto\b", "goto"),
    (r"\bvirtual\b", "virtual function"),
    (r"\b(?:dynamic_cast|typeid)\b", "RTTI"),
    (r"\b(?:asm|__asm__)\b", "inline assembly"),
    (r"\(\s*(?:[A-Za-z_]\w*\s*::\s*)*\*\s*(?:const\s+)?[A-Za-z_]?\w*\s*\)\s*\(", "function pointer"),
))
INCLUDE = re.compile(r"^[ \t]*#[ \t]*include\b[ \t]*(.*)$", re.M)

INT_TYPE = r"(?:(?:un)?signed\s+)?(?:int|long\s+long|long|short|char|bool|unsigned|signed|size_t)"
LOOP_HEADER = re.compile(
    rf"(?:{INT_TYPE})\s+(?P<var>[A-Za-z_]\w*)\s*=\s*(?P<init>[^;]+?)\s*;"
    r"\s*(?P<cvar>[A-Za-z_]\w*)\s*<(?![=<])\s*(?P<bound>[^;]+?)\s*;"
    r"\s*(?:\+\+\s*(?P<pre>[A-Za-z_]\w*)|(?P<post>[A-Za-z_]\w*)\s*\+\+|(?P<addvar>[A-Za-z_]\w*)\s*\+=\s*(?P<step>[^;]+?))\s*"
)
TRIPCOUNT = re.compile(r"^\s*#\s*pragma\s+HLS\s+LOOP_TRIPCOUNT\b", re.I)
QUALIFIED = re.compile(
    r"(?:\btypename\s+)?(?:::\s*)?(?:[A-Za-z_]\w*\s*(?:<[^<>;]*(?:<[^<>;]*>[^<>;]*)*>)?\s*::\s*)+[A-Za-z_]\w*"
)
IDENTIFIER = re.compile(r"(?<!\w)[A-Za-z_]\w*")
CONSTANT_WORDS = frozenset({"sizeof", "true", "false", "int", "unsigned", "signed", "long", "short", "char", "bool"})
CONST_DECL = re.compile(rf"\b(?:const|constexpr)\s+(?:{INT_TYPE})\s+([A-Za-z_]\w*)\s*=\s*([^;{{}}]+?)\s*[;,]")
VARIABLE_DECL = re.compile(rf"(?<!const )(?<!constexpr )(?<![\w:])(?:{INT_TYPE})\s+&?\s*([A-Za-z_]\w*)\s*[=;,)\[]")
ENUM = re.compile(r"\benum\b[^{;]*\{([^}]*)\}")


@dataclass(frozen=True)
class Source:
    """One synthesizable file: its path relative to the project root and two cleaned texts."""

    rel: str
    no_comments: str  # comments blanked (strings kept: the #include names)
    code: str  # comments and string/char literals blanked
    line_starts: tuple[int, ...]

    def line(self, offset: int) -> int:
        return bisect_right(self.line_starts, offset)

    def at(self, offset: int, message: str) -> str:
        return f"{self.rel}:{self.line(offset)}: {message}"


def synthesis_problems(project_root: str | os.PathLike[str], *, compile: bool = True,
                       call_graph: bool = True) -> list[str]:
    """Every problem found in the project's synthesizable sources ([] when it is clean).

    `compile=False` runs only the lexical checks; `call_graph=False` compiles with -fsyntax-only
    (checks 1 without the recursion check 3).
    """
    root = Path(project_root)
    problems = lexical_problems(root)
    if compile:
        problems += compile_problems(root, call_graph=call_graph)
    return problems


def synthesizable_files(root: Path) -> list[Path]:
    hls = root / "hls"
    files = [hls / "top.cpp", hls / "top.h", hls / "engine_config.h", hls / "engine_layer.h"]
    for folder in ("params", "layers", "engine"):  # engine/: the layer-sequential engine's units
        files += sorted((hls / folder).glob("*.h"))
    return [path for path in files if path.is_file()]


def read_source(root: Path, path: Path) -> Source:
    text = path.read_text()
    starts = (0,) + tuple(m.end() for m in re.finditer("\n", text))
    return Source(path.relative_to(root).as_posix(), blank(text, strings=False), blank(text, strings=True), starts)


LEXEMES = re.compile(
    r"(?P<line>//[^\n]*)"
    r"|(?P<block>/\*.*?(?:\*/|\Z))"
    r"|(?P<raw>(?<!\w)(?:u8|u|U|L)?R\"(?P<delimiter>[^()\\\s]{0,16})\(.*?(?:\)(?P=delimiter)\"|\Z))"
    r"|(?P<string>(?:(?<!\w)(?:u8|u|U|L))?\"(?:\\.|[^\"\\\n])*\"?)"
    r"|(?P<char>(?<!\w)(?:u8|u|U|L)?'(?:\\.|[^'\\\n])*'?)",
    re.S,
)


def blank(text: str, strings: bool) -> str:
    """`text` with comments (and, if `strings`, string/char literal contents) replaced by spaces.

    Newlines and offsets are kept, so positions still map to the original lines. A `'` right
    after a word character is a digit separator (1'000), not a character literal.
    """
    def wipe(match: re.Match[str]) -> str:
        lexeme = match.group()
        if match.lastgroup in ("line", "block"):
            return re.sub(r"[^\n]", " ", lexeme)
        if not strings:
            return lexeme
        quote = lexeme.index("'" if match.lastgroup == "char" else '"')
        closing = 1 if len(lexeme) > quote + 1 and lexeme[-1] == lexeme[quote] else 0
        inner = lexeme[quote + 1:len(lexeme) - closing]
        return lexeme[:quote + 1] + re.sub(r"[^\n]", " ", inner) + lexeme[len(lexeme) - closing:]

    return LEXEMES.sub(wipe, text)


# -- lexical checks -----------------------------------------------------------------------------


def lexical_problems(project_root: str | os.PathLike[str]) -> list[str]:
    """Checks 2 and 4 (and the #include rule) on the synthesizable sources, without compiling."""
    root = Path(project_root)
    sources = [read_source(root, path) for path in synthesizable_files(root)]
    problems: list[str] = []
    constants = constant_names(sources)
    allowed = {source.rel for source in sources}
    for source in sources:
        found = include_problems(root, source, allowed) + forbidden_problems(source) + loop_problems(source, constants)
        problems += sorted(found, key=lambda problem: int(problem[len(source.rel) + 1:].split(":", 1)[0]))
    return problems


def include_problems(root: Path, source: Source, allowed: set[str]) -> list[str]:
    problems = []
    for match in INCLUDE.finditer(source.no_comments):
        target = match.group(1).strip()
        name = target[1:-1] if len(target) >= 2 and target[0] + target[-1] in ('""', "<>") else None
        if name is None:
            problems.append(source.at(match.start(), f"#include of a non-literal name: {target}"))
        elif name in HLS_HEADERS:
            continue
        elif target[0] == '"' and resolve_include(root, source, name) in allowed:
            continue
        else:
            problems.append(source.at(match.start(), f"#include {target}: not a project header or "
                                                     f"one of {', '.join(sorted(HLS_HEADERS))}"))
    return problems


def resolve_include(root: Path, source: Source, name: str) -> str | None:
    """The project-relative path a quoted #include finds first: the including dir, then -I hls."""
    for base in (Path(source.rel).parent, Path("hls")):
        candidate = Path(os.path.normpath(base / name))
        if (root / candidate).is_file():
            return candidate.as_posix()
    return None


def forbidden_problems(source: Source) -> list[str]:
    problems = []
    for pattern, message in FORBIDDEN:
        for match in pattern.finditer(source.code):
            if match.group() == "delete" and source.code[:match.start()].rstrip().endswith("="):
                continue  # a deleted special member function, not a deallocation
            problems.append(source.at(match.start(), f"{message}: '{' '.join(match.group().split())}'"))
    return problems


def constant_names(sources: Iterable[Source]) -> set[str]:
    """Names that stand for compile-time integer constants (see the module docstring)."""
    constants: set[str] = set()
    variables: set[str] = set()
    declarations: dict[str, list[str]] = {}
    for source in sources:
        code = source.code
        constants |= template_parameters(code)
        for body in ENUM.findall(code):
            constants |= {m.group(1) for m in re.finditer(r"([A-Za-z_]\w*)\s*(?:=[^,]*)?(?:,|$)", body.strip())}
        for name, init in CONST_DECL.findall(code):
            declarations.setdefault(name, []).append(init)
        variables |= set(VARIABLE_DECL.findall(without_template_heads(code)))
    constants -= variables
    changed = True
    while changed:
        changed = False
        for name, inits in declarations.items():
            if name not in constants and name not in variables and all(is_constant(i, constants) for i in inits):
                constants.add(name)
                changed = True
    return constants


def template_heads(code: str) -> list[tuple[int, int]]:
    """(start, end) of the parameter list inside every `template <...>` of `code`."""
    spans = []
    for match in re.finditer(r"\btemplate\s*<", code):
        depth, k = 1, match.end()
        while k < len(code) and depth:
            depth += {"<": 1, ">": -1}.get(code[k], 0)
            k += 1
        spans.append((match.end(), k - 1))
    return spans


def without_template_heads(code: str) -> str:
    for start, end in template_heads(code):
        code = code[:start] + " " * (end - start) + code[end:]
    return code


def template_parameters(code: str) -> set[str]:
    """Non-type template parameter names of every `template <...>` in `code`."""
    names = set()
    for start, end in template_heads(code):
        for parameter in split_top_level(code[start:end]):
            found = re.match(rf"\s*(?:const\s+)?{INT_TYPE}\s+([A-Za-z_]\w*)", parameter)
            if found:
                names.add(found.group(1))
    return names


def split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += {"<": 1, "(": 1, ">": -1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    return parts + [text[start:]]


def is_constant(expression: str, constants: set[str]) -> bool:
    """Whether `expression` is lexically a constant expression of `constants` (module docstring)."""
    text = QUALIFIED.sub(" 0 ", expression)
    if re.search(r"\.(?!\d)|->|\[|\"|'|\{", re.sub(r"\d+\.\d*", "0", text)):
        return False
    for match in IDENTIFIER.finditer(text):
        name = match.group()
        if name in CONSTANT_WORDS:
            continue
        if name not in constants or re.match(r"\s*\(", text[match.end():]):
            return False
    return True


def matching(text: str, start: int, opening: str, closing: str) -> int:
    """Offset of the bracket closing the one at `start` (or len(text))."""
    depth = 0
    for k in range(start, len(text)):
        if text[k] == opening:
            depth += 1
        elif text[k] == closing:
            depth -= 1
            if depth == 0:
                return k
    return len(text)


def loop_problems(source: Source, constants: set[str]) -> list[str]:
    code = source.code
    problems = []
    closing_whiles = set()
    for match in re.finditer(r"\bdo\b", code):
        problems.append(source.at(match.start(), "'do' loop (only counted for loops are allowed)"))
        body_end = statement_end(code, len(code) - len(code[match.end():].lstrip()))
        closing = re.match(r"\s*while\b", code[body_end:])
        if closing:
            closing_whiles.add(body_end + closing.end() - len("while"))
    problems += [source.at(m.start(), "'while' loop (only counted for loops are allowed)")
                 for m in re.finditer(r"\bwhile\b", code) if m.start() not in closing_whiles]
    for match in re.finditer(r"\bfor\s*\(", code):
        close = matching(code, match.end() - 1, "(", ")")
        header = " ".join(code[match.end():close].split())
        parsed = LOOP_HEADER.fullmatch(header)
        variable = parsed and parsed.group("var")
        if not parsed or {parsed.group("cvar"), parsed.group("pre") or parsed.group("post") or parsed.group("addvar")} != {variable}:
            problems.append(source.at(match.start(), f"loop header 'for ({header})' is not 'for (int v = init; v < bound; ++v)'"))
            continue
        step = parsed.group("step")
        if step is not None and re.fullmatch(r"\s*-?\d+\s*", step) and int(step) <= 0:
            problems.append(source.at(match.start(), f"loop 'for ({header})' does not count up"))
        pragmas, body_start = pragmas_after(code, close + 1)
        body = code[body_start:statement_end(code, body_start)]
        if assigns(body, variable):
            problems.append(source.at(match.start(), f"loop variable '{variable}' is assigned in the body of 'for ({header})'"))
        bounds = [parsed.group("init"), parsed.group("bound")] + ([step] if step is not None else [])
        if not all(is_constant(b, constants) for b in bounds) and not any(TRIPCOUNT.match(p) for p in pragmas):
            problems.append(source.at(match.start(), f"loop 'for ({header})' has a variable trip count but no "
                                                     "'#pragma HLS LOOP_TRIPCOUNT' after its header"))
    return problems


def pragmas_after(code: str, offset: int) -> tuple[list[str], int]:
    """The preprocessor lines right after a loop header (and its '{'), and where the body starts."""
    k = offset
    while k < len(code) and code[k].isspace():
        k += 1
    body_start = k
    if k < len(code) and code[k] == "{":
        k += 1
    lines = []
    while True:
        while k < len(code) and code[k].isspace():
            k += 1
        if k >= len(code) or code[k] != "#":
            break
        end = code.find("\n", k)
        end = len(code) if end < 0 else end
        lines.append(code[k:end])
        k = end
    if body_start < len(code) and code[body_start] != "{":
        body_start = k  # a braceless body starts after the pragma lines
    return lines, body_start


def statement_end(code: str, start: int) -> int:
    """End of the statement starting at `start`: its matching '}' or its first ';' at depth 0."""
    depth = 0
    for k in range(start, len(code)):
        ch = code[k]
        if ch in "({[":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if ch == "}" and depth == 0:
                return k + 1
            if depth < 0:
                return k
        elif ch == ";" and depth == 0:
            return k + 1
    return len(code)


def assigns(body: str, variable: str) -> bool:
    name = re.escape(variable)
    not_member = r"(?<![\w.])(?<!->)(?<!::)"
    return any(re.search(pattern, body) for pattern in (
        rf"(?:\+\+|--)\s*{not_member}{name}\b",
        rf"{not_member}\b{name}\s*(?:\+\+|--)",
        rf"{not_member}\b{name}\s*(?:<<|>>|[-+*/%&|^])?=(?!=)",
    ))


# -- compile-based checks ------------------------------------------------------------------------


def compile_problems(project_root: str | os.PathLike[str], *, call_graph: bool = True,
                     synthesis_view: bool = False) -> list[str]:
    """Check 1 (restricted C++ compiles) and, with `call_graph`, check 3 (no recursion).

    `synthesis_view` compiles (syntax only) with `__SYNTHESIS__` defined, as Vitis HLS reads the
    sources: the `#ifdef __SYNTHESIS__` branches (ap_int tables, rings and MAC loops where a C++
    build uses native integers) and not the C++ build's. Not the default: it parses every table
    element as an ap_int initializer again (ResNet-8's pipeline: 5.5 s and 780 MB, against 2 s);
    the tests run it on every op case at every folding."""
    root = Path(project_root)
    if GXX is None:
        return ["g++ not found: cannot compile hls/top.cpp"]
    with tempfile.TemporaryDirectory(prefix="hwc_synth_") as scratch:
        if synthesis_view:
            flags: tuple[str, ...] = ("-D__SYNTHESIS__", "-fsyntax-only")
            call_graph = False
        else:
            flags = (CALL_GRAPH_FLAGS + ("-o", str(Path(scratch) / "top.o"))) if call_graph else ("-fsyntax-only",)
        command = [GXX, *BASE_FLAGS, *flags, "hls/top.cpp"]
        result = subprocess.run(command, cwd=root, capture_output=True, text=True,
                                env={**os.environ, "LC_ALL": "C"})  # plain ASCII diagnostics
        if result.returncode != 0:
            return [f"hls/top.cpp:0: does not compile as restricted C++ ({' '.join(command[1:])}):\n"
                    + result.stderr[:MAX_ERROR_CHARS]]
        if not call_graph:
            return []
        graphs = list(Path(scratch).glob("*.ci"))
        if not graphs:
            return ["hls/top.cpp:0: g++ wrote no call graph (-fcallgraph-info needs GCC >= 10)"]
        top = json.loads((root / "project.json").read_text())["top_function"]
        files = {path.relative_to(root).as_posix() for path in synthesizable_files(root)}
        return recursion_problems(graphs[0].read_text(), top, files)


VCG_NODE = re.compile(r'^node: \{ title: "((?:[^"\\]|\\.)*)" label: "((?:[^"\\]|\\.)*)"', re.M)
VCG_EDGE = re.compile(r'^edge: \{ sourcename: "((?:[^"\\]|\\.)*)" targetname: "((?:[^"\\]|\\.)*)"'
                      r'(?: label: "((?:[^"\\]|\\.)*)")?', re.M)
INDIRECT_CALL = "__indirect_call"


def parse_call_graph(text: str) -> nx.MultiDiGraph:
    """A `-fcallgraph-info` VCG file as a graph: node attributes `name` and `where` (file:line)."""
    graph = nx.MultiDiGraph()
    for title, label in VCG_NODE.findall(text):
        name, _, where = label.rpartition("\\n")
        graph.add_node(title, name=name or label, where=where if name else "")
    for source, target, where in VCG_EDGE.findall(text):
        graph.add_edge(source, target, where=where)
    for node, data in graph.nodes(data=True):
        data.setdefault("name", node)
        data.setdefault("where", "")
    return graph


def defined_in(where: str, files: set[str]) -> bool:
    path = where.rsplit(":", 2)[0] if where.count(":") >= 2 else where
    return os.path.normpath(path) in files


def is_function(title: str, function: str) -> bool:
    symbol = title.rpartition(":")[2]
    return symbol == function or symbol.startswith(f"_Z{len(function)}{function}")


def recursion_problems(call_graph_text: str, top_function: str, files: set[str]) -> list[str]:
    """Cycles and indirect calls reachable from the top function, in the project's own code."""
    graph = parse_call_graph(call_graph_text)
    tops = [node for node in graph if is_function(node, top_function)]
    if not tops:
        return [f"hls/top.cpp:0: top function '{top_function}' not found in the call graph"]
    reachable = graph.subgraph(set(tops).union(*(nx.descendants(graph, top) for top in tops)))
    problems = []
    for component in nx.strongly_connected_components(reachable):
        members = sorted(component, key=lambda n: source_order(graph.nodes[n]["where"]))
        if len(members) == 1 and not reachable.has_edge(members[0], members[0]):
            continue
        own = [n for n in members if defined_in(graph.nodes[n]["where"], files)]
        if own:
            names = " -> ".join(graph.nodes[n]["name"] for n in members)
            problems.append(f"{location(graph.nodes[own[0]]['where'])}: recursion: {names}")
    if INDIRECT_CALL in reachable:
        for caller, _, data in reachable.in_edges(INDIRECT_CALL, data=True):
            if defined_in(graph.nodes[caller].get("where", ""), files):
                problems.append(f"{location(data['where'])}: call through a function pointer in "
                                f"{graph.nodes[caller]['name']}")
    return problems


def source_order(where: str) -> tuple[str, int, int]:
    """'file:line:col' as a sort key (numeric line and column)."""
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return where, 0, 0


def location(where: str) -> str:
    """'file:line:col' -> 'file:line'."""
    parts = where.rsplit(":", 2)
    return ":".join(parts[:2]) if len(parts) == 3 else where


__all__ = ["GXX", "blank", "compile_problems", "constant_names", "is_constant", "lexical_problems",
           "recursion_problems", "synthesis_problems", "synthesizable_files"]
