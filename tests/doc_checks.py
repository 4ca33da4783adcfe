"""The checkers tests/test_docs.py runs over the README and docs/ (its docstring lists what they check).

``snippets`` reads a doc's code (fenced and indented blocks, inline code), its relative links and the repo
paths it writes as plain text. Each ``*_problems`` function takes what a doc says and returns one line per
mismatch with the code; nothing is run (parsers are built in-process, files and sources are read).
``check_snippets`` runs every per-snippet checker.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import fnmatch
import functools
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import tomllib
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = (REPO_ROOT / "README.md", *sorted(p for p in (REPO_ROOT / "docs").rglob("*.md")))

#: Paths the docs name that need not exist in a checkout, each with the reason. A key ending in "/" covers
#: everything under it; other keys are fnmatch patterns matched against the whole token.
ALLOWED_MISSING: dict[str, str] = {
    ".venv/": "created by `make` (the locked environment), git-ignored",
    ".uv/": "created by `make` (uv itself), git-ignored",
    ".whl/": "written by `make device-wheels`, git-ignored",
    ".gpu-rehearsal/": "written by `make gpu-rehearsal`, git-ignored",
    "gpu-out/": "the GPU suite's --out folder in the examples",
    "sweeps/my_torch_grid.yaml": "docs/distributed.md's stand-in for the reader's own sweep file",
    "speech.txt": "the reader's own text file in the CLI examples",
    "summary.md": "written by benchmarks/gpu_suite.py into its --out folder",
    "xtts-cuda.md": "written by benchmarks/xtts_bench.py --device cuda once a GPU runs it",
    "config.yaml": "a file of F5's vocoder folder (vocoder_dir), not of this repository",
    "config.json": "a file of an XTTS checkpoint folder, not of this repository",
    "vocab.json": "a file of an XTTS checkpoint folder, not of this repository",
    "load.json": "written by docs/traces.md's api.trace example",
    "downloaded.json": "the README's stand-in for a trace the reader downloaded from the dashboard",
    "bench.json": "a trace written by the `trace ... -o bench.json` example just before it is opened",
}
#: Options whose value is written, not read: the path after them is an output (skipped).
OUTPUT_OPTIONS = ("-o", "--out", "--output", "-d", "-w", "--target", "--data-dir")
PATH_EXTENSIONS = (".py", ".md", ".yaml", ".yml", ".toml", ".json", ".jsonl", ".txt", ".sh", ".ipynb", ".html",
                   ".lock", ".csv", ".png", ".cfg")
#: Top-level names a path may start with that are not in a fresh checkout (made by the set-up or a target).
MADE_TOP_LEVEL = (".venv", ".uv", ".whl", ".gpu-rehearsal")
SKIPPED_DIRS = {".git", ".venv", ".uv", ".whl", ".gpu-rehearsal", "__pycache__", ".pytest_cache", ".ruff_cache",
                ".ipynb_checkpoints", "node_modules", "build", "dist"}
PYTHON_WORDS = re.compile(r"^(?:\S*/)?python3?(?:\.\d+)?$|^\$\{?PY\}?$")
SHELL_STOPS = {"|", "||", "&&", ";", "&", ">", ">>", "2>&1", "<"}


@dataclass(frozen=True)
class Snippet:
    """A piece of code from a doc: a block's logical line (continuations joined), an inline span, or a link."""

    doc: Path
    line: int
    text: str
    kind: str  # "block", "inline", "link", or "prose" (a repo path written as plain text)
    lang: str = ""  # a fenced block's language; "text" marks a drawing, whose words are not commands

    def where(self) -> str:
        return f"{self.doc.relative_to(REPO_ROOT)}:{self.line}: {self.text[:100]!r}"


# --- reading the docs -----------------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: A repo path written as plain text ("see docs/serving.md"): it starts with one of the repo's folders.
PROSE_PATH = re.compile(r"(?<![\w/.:-])((?:profiling|engines|dashboard|docs|scripts|benchmarks|tests|sweeps|notebooks"
                        r"|examples)/[\w./*-]*[\w/*])")


def snippets(doc: Path, text: str | None = None) -> list[Snippet]:
    """Code blocks (fenced, or indented four spaces after a blank line), inline code and relative links."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    out: list[Snippet] = []
    block: list[tuple[int, str]] = []
    fenced = False
    lang = ""
    indented = False
    previous_blank = True
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            if fenced:
                out += _block_lines(doc, block, lang)
                block = []
            fenced = not fenced
            lang = line.strip()[3:].strip()
            previous_blank = False
            continue
        if fenced:
            block.append((number, line))
            continue
        starts_indented = line.startswith("    ") and line.strip() and not line.lstrip().startswith(("- ", "* "))
        if starts_indented and (indented or previous_blank):
            indented = True
            block.append((number, line))
            continue
        if indented and not line.strip():
            continue  # a blank line inside an indented block
        if indented:
            out += _block_lines(doc, block)
            block, indented = [], False
        for match in INLINE.finditer(line):
            out.append(Snippet(doc, number, match.group(2).strip(), "inline"))
        prose = INLINE.sub("", line)
        for match in LINK.finditer(prose):
            out.append(Snippet(doc, number, match.group(1), "link"))
        for match in PROSE_PATH.finditer(LINK.sub("", prose)):
            out.append(Snippet(doc, number, match.group(1), "prose"))
        previous_blank = not line.strip()
    out += _block_lines(doc, block)
    return out


def _block_lines(doc: Path, lines: list[tuple[int, str]], lang: str = "") -> list[Snippet]:
    """A block's logical lines: a line ending in a backslash goes on with the next."""
    out: list[Snippet] = []
    start, parts = 0, []
    for number, line in lines:
        if not parts:
            start = number
        stripped = line.strip()
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        out.append(Snippet(doc, start, " ".join(parts), "block", lang))
        parts = []
    if parts:
        out.append(Snippet(doc, start, " ".join(parts), "block", lang))
    return out


def all_snippets() -> list[Snippet]:
    return [s for doc in DOCS for s in snippets(doc)]


def words(text: str) -> list[str]:
    """Shell words of ``text`` up to its comment; plain whitespace split where the quoting does not close."""
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.split("#", 1)[0].split()


# --- the parsers ---------------------------------------------------------------------------------------------

@functools.cache
def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    from profiling.cli.main import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@dataclass(frozen=True)
class CliCall:
    """A ``python -m profiling`` command found in a doc: its words after ``profiling``."""

    snippet: Snippet
    argv: tuple[str, ...]
    complete: bool  # a whole command (parse it) rather than a mention (check the option names only)


def cli_calls(snippet: Snippet) -> list[CliCall]:
    """Every lab command in a snippet: ``<python> -m profiling ...``, ``profiling SUB ...``, or inline ``SUB --x``."""
    if snippet.kind in ("link", "prose") or snippet.lang == "text":
        return []
    tokens = words(snippet.text)
    calls: list[CliCall] = []
    for i, token in enumerate(tokens):
        rest: list[str] | None = None
        if token == "-m" and i + 1 < len(tokens) and tokens[i + 1] == "profiling" and i > 0 \
                and PYTHON_WORDS.match(tokens[i - 1]):
            rest = tokens[i + 2:]
        elif token == "profiling" and i == 0 and len(tokens) > 1 and not tokens[1].startswith("-"):
            rest = tokens[1:]
        if rest is not None:
            calls.append(_call(snippet, rest, mention=snippet.kind == "inline" and token == "profiling"))
    if not calls and snippet.kind == "inline" and tokens and tokens[0] in subcommand_parsers() \
            and any(t.startswith("--") for t in tokens[1:]):
        calls.append(_call(snippet, tokens, mention=True))
    return calls


def _call(snippet: Snippet, rest: list[str], mention: bool) -> CliCall:
    argv: list[str] = []
    for word in rest:
        if word in SHELL_STOPS:
            break
        argv.append(word)
    placeholders = any(w in ("...", "…") or w.startswith("[") or w.endswith("]") or "|" in w for w in argv)
    # Inline commands in prose stand for a kind of call (`--mode MODE`); parse them only when they are literal.
    literal = snippet.kind == "block" or not any(re.fullmatch(r"[A-Z][A-Z_]+", w) for w in argv)
    return CliCall(snippet, tuple(argv), complete=literal and not mention and not placeholders)


def cli_problems(call: CliCall) -> list[str]:
    """What is wrong with one command: an unknown subcommand, an unknown option, or (complete) a parse error."""
    parsers = subcommand_parsers()
    if not call.argv:
        return []
    name = call.argv[0]
    if name not in parsers:
        return [f"{call.snippet.where()}: no subcommand {name!r} (there are {', '.join(sorted(parsers))})"]
    parser = parsers[name]
    problems = []
    for word in call.argv[1:]:
        option = word.strip("[]").split("=", 1)[0]
        if option.startswith("-") and len(option) > 1 and not _is_number(option) \
                and option not in parser._option_string_actions:
            problems.append(f"{call.snippet.where()}: `{name}` has no option {option}")
    if problems or not call.complete:
        return problems
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(list(call.argv[1:]))
    except SystemExit as error:
        if error.code:
            return [f"{call.snippet.where()}: `{name}` does not parse: {stderr.getvalue().strip()}"]
    return []


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


# --- options named on their own ------------------------------------------------------------------------------

@functools.cache
def known_options() -> frozenset[str]:
    """Every option of a profiling subcommand, plus every ``--x`` the repo's own scripts and Makefile spell out."""
    options = {o for parser in subcommand_parsers().values() for o in parser._option_string_actions}
    sources = [REPO_ROOT / "Makefile", REPO_ROOT / "app.py",
               *(REPO_ROOT / "scripts").glob("*"), *(REPO_ROOT / "benchmarks").glob("*.py"),
               *(REPO_ROOT / "profiling").rglob("*.py")]
    for source in sources:
        if source.is_file():
            options.update(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", source.read_text(encoding="utf-8")))
    return frozenset(options)


def bare_option_problems(snippet: Snippet) -> list[str]:
    """An inline span that starts with an option (``--prebuffer-ms``, ``--executor ray [--workers N]``) names
    options the lab (or one of its scripts) has."""
    if snippet.kind != "inline" or not snippet.text.startswith("--"):
        return []
    names = re.findall(r"(?<![\w-])(--[a-z][\w-]*)", snippet.text)
    return [f"{snippet.where()}: no command here takes {name}" for name in names if name not in known_options()]


# --- modules and scripts of the repo run with options ---------------------------------------------------------

def script_runs(snippet: Snippet) -> list[tuple[Path, list[str]]]:
    """``python -m profiling.x.y --opt`` and ``python path/to/script.py --opt``: the file and its options."""
    if snippet.kind in ("link", "prose"):
        return []
    tokens = words(snippet.text)
    runs: list[tuple[Path, list[str]]] = []
    for i, token in enumerate(tokens):
        if not PYTHON_WORDS.match(token) or i + 1 >= len(tokens):
            continue
        if tokens[i + 1] == "-m" and i + 2 < len(tokens) and tokens[i + 2].startswith("profiling."):
            target, rest = _module_file(tokens[i + 2]), tokens[i + 3:]
        elif tokens[i + 1].endswith(".py"):
            target, rest = REPO_ROOT / tokens[i + 1], tokens[i + 2:]
        else:
            continue
        options = []
        for word in rest:
            if word in SHELL_STOPS:
                break
            if word.startswith("--"):
                options.append(word.split("=", 1)[0])
        runs.append((target, options))
    return runs


def _module_file(module: str) -> Path:
    base = REPO_ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _with_imports(script: Path) -> str:
    """A script's text and the text of the repo modules it imports (``app.py`` parses in ``dashboard/app.py``)."""
    texts = [script.read_text(encoding="utf-8")]
    for node in ast.parse(texts[0]).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = _module_file(node.module)
            if module.is_file() and module != script:
                texts.append(module.read_text(encoding="utf-8"))
    return "\n".join(texts)


def script_problems(snippet: Snippet) -> list[str]:
    problems = []
    for target, options in script_runs(snippet):
        if not target.is_file():
            if not _allowed(str(target.relative_to(REPO_ROOT))):
                problems.append(f"{snippet.where()}: no module or script {target.relative_to(REPO_ROOT)}")
            continue
        source = _with_imports(target)
        problems += [f"{snippet.where()}: {target.relative_to(REPO_ROOT)} has no option {option}"
                     for option in options if f'"{option}"' not in source and f"'{option}'" not in source]
    return problems


# --- paths ---------------------------------------------------------------------------------------------------

@functools.cache
def repo_entries() -> tuple[frozenset[str], frozenset[str]]:
    """Every file and every folder of the checkout, relative to the root, ignored and made ones left out."""
    files: set[str] = set()
    dirs: set[str] = set()
    for root, subdirs, names in os.walk(REPO_ROOT):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        relative = Path(root).relative_to(REPO_ROOT)
        dirs.update(str(relative / d) for d in subdirs)
        files.update(str(relative / n) for n in names)
    return frozenset(files), frozenset(dirs)


def path_tokens(snippet: Snippet) -> list[str]:
    """The words of a snippet that name a repo path."""
    if snippet.kind == "link":
        target = snippet.text.split("#", 1)[0]
        return [] if not target or re.match(r"^[a-z][a-z+.-]*:", target) else [target]
    if snippet.kind == "prose":
        return [snippet.text.rstrip(".")]
    tokens = words(snippet.text) if snippet.kind == "block" else snippet.text.split()
    found = []
    for i, raw in enumerate(tokens):
        if i > 0 and tokens[i - 1] in OUTPUT_OPTIONS or raw.startswith(tuple(o + "=" for o in OUTPUT_OPTIONS)):
            continue
        token = _clean(raw)
        if token and _looks_like_repo_path(token):
            found.append(token)
    return found


def _clean(raw: str) -> str:
    token = raw.split("=", 1)[1] if re.match(r"^-{0,2}[\w.-]+=", raw) else raw
    token = token.lstrip("@(\"'").rstrip(",;:)\"'.")
    return token.removeprefix("file:")


def _looks_like_repo_path(token: str) -> bool:
    if re.fullmatch(r"\.\w+", token):  # a file type (`.ipynb` files), not a file
        return False
    if "://" in token or token.startswith(("/", "~", "$", "-", "<", "%")) or any(c in token for c in "<>{}$`=,|"):
        return False
    if token.startswith(("./", "../")):
        return True
    first = token.split("/", 1)[0]
    if "/" in token and (first in top_level_names() or token.endswith("/")):
        return True
    return token.endswith(PATH_EXTENSIONS) and re.fullmatch(r"[\w./*+-]+", token) is not None


@functools.cache
def top_level_names() -> frozenset[str]:
    return frozenset({p.name for p in REPO_ROOT.iterdir()} | set(MADE_TOP_LEVEL))


def path_problem(token: str, doc: Path) -> str | None:
    """None when ``token`` names something in the checkout (or is allowed to be missing), else the complaint."""
    if _allowed(token) or exists_in_repo(token, doc):
        return None
    return f"{doc.relative_to(REPO_ROOT)}: no {token!r} in the repository"


def _allowed(token: str) -> bool:
    return any(allowed_by(key, token) for key in ALLOWED_MISSING)


def allowed_by(key: str, token: str) -> bool:
    if key.endswith("/"):
        return token == key.rstrip("/") or token.startswith(key)
    return fnmatch.fnmatchcase(token, key)


def exists_in_repo(token: str, doc: Path) -> bool:
    files, dirs = repo_entries()
    wanted_dir = token.endswith("/")
    relative = token.rstrip("/").removeprefix("./")
    candidates = {relative}
    resolved = (doc.parent / relative).resolve()
    if resolved.is_relative_to(REPO_ROOT):
        candidates.add(str(resolved.relative_to(REPO_ROOT)))
    pool = dirs if wanted_dir else files | dirs
    for candidate in candidates:
        if any(c in candidate for c in "*?["):
            if any(fnmatch.fnmatchcase(p, candidate) for p in pool):
                return True
        elif candidate in pool:
            return True
    if relative.startswith("../"):
        return False
    # The tail of a repo path (``serve/``, ``tabs.py``, ``engines/convert/``): it exists, under some folder.
    return any(p.endswith("/" + relative) for p in pool)


# --- make targets and routes ---------------------------------------------------------------------------------

@functools.cache
def make_targets() -> frozenset[str]:
    """The Makefile's targets, its simple variables (``GPU_ENV := .gpu-rehearsal``) expanded."""
    text = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^(\w+)\s*:?=\s*([^$\s]+)\s*$", text, flags=re.MULTILINE))
    targets = set()
    for line in text.splitlines():
        match = re.match(r"^([^\s:=#][^:=]*?)\s*::?(?!=)", line)
        if match:
            expanded = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), match.group(1))
            targets.update(expanded.split())
    return frozenset(targets)


def make_problems(snippet: Snippet) -> list[str]:
    if snippet.kind in ("link", "prose"):
        return []
    tokens = words(snippet.text)
    problems = []
    for i, token in enumerate(tokens[:-1]):
        if token != "make" or (i > 0 and tokens[i - 1] not in SHELL_STOPS and snippet.kind == "block"):
            continue
        target = tokens[i + 1]
        if target.startswith("-") or "=" in target:
            continue
        if target not in make_targets():
            problems.append(f"{snippet.where()}: no Makefile target {target!r}")
    return problems


ROUTE = re.compile(r"(?:^|\s)(/health|/v1/[\w/{}.-]*[\w}])")


@functools.cache
def served_routes() -> frozenset[str]:
    """Every route the serving target declares (``@app.get(...)``, ``@router.post(...)`` in profiling/serve/)."""
    routes = set()
    for module in (REPO_ROOT / "profiling" / "serve").glob("*.py"):
        source = module.read_text(encoding="utf-8")
        routes.update(re.findall(r"@\w+\.(?:get|post|put|patch|delete)\(\s*\"(/[^\"]*)\"", source))
    return frozenset(_route_shape(r) for r in routes)


def _route_shape(route: str) -> str:
    """``/v1/voices/{name}`` and ``/v1/voices/NAME`` alike: every parameter segment as ``{}``."""
    return "/".join("{}" if re.fullmatch(r"\{\w+\}|[A-Z][A-Z_]*", s) else s for s in route.split("?")[0].split("/"))


def route_problems(snippet: Snippet) -> list[str]:
    if snippet.kind != "inline":
        return []
    return [f"{snippet.where()}: the server has no route {route}" for route in ROUTE.findall(snippet.text)
            if _route_shape(route) not in served_routes()]


# --- Python names ---------------------------------------------------------------------------------------------

DOTTED = re.compile(r"(?<![\w.$/-])((?:profiling|engines|dashboard)(?:\.[A-Za-z_]\w*)+)(?![\w/-])")
API_NAME = re.compile(r"(?<![\w./])api\.([A-Za-z_]\w*)(?![\w/])")
FROM_PROFILING = re.compile(r"\bfrom profiling import ([\w, ]+)")


@functools.cache
def defined_names(module_file: Path) -> frozenset[str]:
    """Names a module defines or imports at its top level (read with ast, nothing imported)."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                with contextlib.suppress(ValueError):  # a literal __all__: what a lazy __getattr__ gives
                    names.update(ast.literal_eval(node.value))
    return frozenset(names)


def _api_exports() -> set[str]:
    """What ``from profiling import NAME`` gives: the names ``profiling/__init__.py`` re-exports from the API."""
    from profiling import __all__ as exported

    return set(exported)


def dotted_problem(name: str) -> str | None:
    """None when ``a.b.c`` is a module of the repo or a name its longest module prefix defines."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO_ROOT.joinpath(*parts[:cut])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not module.is_file():
            continue
        if cut == len(parts):
            return None
        attribute = parts[cut]
        submodule = base.is_dir() and ((base / attribute).is_dir() or (base / f"{attribute}.py").is_file())
        if attribute in defined_names(module) or submodule:
            return None
        if module == REPO_ROOT / "profiling" / "__init__.py" and attribute in _api_exports():
            return None
        return f"{'.'.join(parts[:cut])} has no {attribute!r}"
    return f"no module {parts[0]}.{parts[1]}" if len(parts) > 1 else None


def api_defined_names() -> frozenset[str]:
    """What ``profiling.api`` offers: its package's names and its submodules (``api.types``, ...)."""
    package = REPO_ROOT / "profiling" / "api"
    return defined_names(package / "__init__.py") | {p.stem for p in package.glob("*.py") if p.stem != "__init__"}


def name_problems(snippet: Snippet) -> list[str]:
    if snippet.kind in ("link", "prose"):
        return []
    text = snippet.text
    problems = [f"{snippet.where()}: {p}" for name in DOTTED.findall(text)
                if not name.endswith(PATH_EXTENSIONS) and (p := dotted_problem(name))]
    api_names = api_defined_names()
    problems += [f"{snippet.where()}: profiling.api has no {name!r}" for name in API_NAME.findall(text)
                 if name not in api_names and f".{name}" not in PATH_EXTENSIONS]
    for group in FROM_PROFILING.findall(text):
        problems += [f"{snippet.where()}: `from profiling import {name}` is not exported" for name in
                     (n.strip() for n in group.split(",")) if name and dotted_problem(f"profiling.{name}")]
    return problems


# --- dashboard tabs ------------------------------------------------------------------------------------------

TAB_MENTION = re.compile(r"\b(?:the|The|dashboard's|its) (?:\*\*)?([A-Z][a-z]+)(?:\*\*)?(?:'s)? tab\b")


@functools.cache
def tab_titles() -> tuple[str, ...]:
    """The dashboard's tab titles, read from dashboard/tabs.py's TABS literal (the dashboard is not imported)."""
    tree = ast.parse((REPO_ROOT / "dashboard" / "tabs.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "TABS":
            return tuple(entry[0] for entry in ast.literal_eval(node.value))
    raise AssertionError("dashboard/tabs.py has no TABS")


def tab_problems(doc: Path, text: str) -> list[str]:
    """Every "the X tab" in prose names a tab the dashboard has."""
    return [f"{doc.relative_to(REPO_ROOT)}:{number}: the dashboard has no tab {match.group(1)!r}"
            for number, line in enumerate(text.splitlines(), start=1)
            for match in TAB_MENTION.finditer(line) if match.group(1) not in tab_titles()]


def readme_dashboard_tabs(readme_text: str) -> list[str]:
    """The tabs README's Dashboard section describes, one bullet each (``- **Title**: ...``), in order."""
    section = readme_text.split("\n## Dashboard\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- \*\*([^*]+)\*\*:", section, flags=re.MULTILINE)


# --- sweep files shown in the docs ---------------------------------------------------------------------------

def fenced_blocks(text: str) -> list[tuple[int, str, str]]:
    """Every fenced block of a doc as (first line, language, body)."""
    blocks, body, start, lang, inside = [], [], 0, "", False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            if inside:
                blocks.append((start, lang, "\n".join(body)))
            else:
                start, lang, body = number + 1, line.strip()[3:].strip(), []
            inside = not inside
        elif inside:
            body.append(line)
    return blocks


def sweep_key_problems(doc: Path, text: str) -> list[str]:
    """A YAML or TOML block with an ``engines`` list is a sweep file: every key is one the sweep reader takes."""
    from profiling.sweeps import spec

    problems = []
    for line, lang, body in fenced_blocks(text):
        if lang not in ("yaml", "yml", "toml"):
            continue
        data = tomllib.loads(body) if lang == "toml" else yaml.safe_load(body)
        if not isinstance(data, dict) or "engines" not in data:
            continue
        where = f"{doc.relative_to(REPO_ROOT)}:{line}"
        problems += [f"{where}: sweep key {k!r} unknown" for k in data if k not in spec._TOP_KEYS]
        for entry in data["engines"]:
            problems += [f"{where}: engines entry key {k!r} unknown" for k in entry if k not in spec._ENGINE_KEYS]
            problems += [f"{where}: convert key {k!r} unknown" for k in entry.get("convert") or {}
                         if k not in spec._CONVERT_KEYS]
            problems += [f"{where}: voice key {k!r} unknown" for k in entry.get("voice") or {}
                         if k not in spec._VOICE_KEYS]
    return problems


# --- the README's architecture -------------------------------------------------------------------------------

def architecture_packages(readme_text: str) -> set[str]:
    """The ``name/`` entries inside the README architecture's profiling/ box (its left column only)."""
    lines = readme_text.split("## Architecture", 1)[1].split("| profiling/", 1)[1].splitlines()[1:]
    named: set[str] = set()
    for line in lines:
        if line.strip().startswith("+"):
            break
        cell = line.split("|")[1] if line.count("|") >= 2 else ""
        named.update(re.findall(r"(?<![\w/])([a-z_]+)/(?!\w)", cell))
    return named


def architecture_bullet_packages(readme_text: str) -> set[str]:
    """The ``name/`` spans of the Architecture section's ``profiling/`` bullet."""
    section = readme_text.split("## Architecture", 1)[1]
    bullet = section.split("\n- `profiling/`:", 1)[1].split("\n- ", 1)[0]
    return set(re.findall(r"`([a-z_]+)/`", bullet))


def profiling_subpackages() -> set[str]:
    return {p.parent.name for p in (REPO_ROOT / "profiling").glob("*/__init__.py")}


# --- the checks ----------------------------------------------------------------------------------------------

def check_snippets(found: list[Snippet]) -> list[str]:
    problems: list[str] = []
    for snippet in found:
        for call in cli_calls(snippet):
            problems += cli_problems(call)
        problems += script_problems(snippet)
        problems += make_problems(snippet)
        problems += route_problems(snippet)
        problems += name_problems(snippet)
        problems += bare_option_problems(snippet)
        for token in path_tokens(snippet):
            problem = path_problem(token, snippet.doc)
            if problem:
                problems.append(f"{problem} (line {snippet.line})")
    return problems
