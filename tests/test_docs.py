"""The README and docs/ say what the code does.

Reads README.md and docs/**/*.md (not the rendered notebooks): their code (fenced and indented blocks, inline
code), their relative links, and repo paths written as plain text. Without running anything it checks that:

- every ``python -m profiling SUBCOMMAND ...`` (also ``$PY -m``, ``.venv/bin/python -m``, ``profiling SUB``, and
  inline ``SUB --option`` for a known subcommand) names a subcommand and only options its argparse parser
  accepts, and a literal whole command parses (the parser is built in-process from ``profiling.cli``);
- an option named on its own (``--prebuffer-ms``) is one the lab, its scripts or its Makefile have;
- every ``python -m profiling.x.y`` module and ``python script.py`` exists, with every ``--option`` given to it
  spelled in that file (or a repo module it imports);
- every repo path named exists (relative to the root, to the doc, or as the tail of a repo path), globs match
  something, and only the outputs and examples of ``ALLOWED_MISSING`` (each with its reason) are let through;
- every ``make TARGET`` is a Makefile target, and every server route (``/v1/...``, ``/health``) is one the
  serving target declares;
- every dotted name (``profiling.analysis.pareto.sweep_quality``, ``engines.errors.InputError``), ``api.NAME``
  and ``from profiling import NAME`` is defined, and every "the X tab" is a dashboard tab;
- the README's architecture names every profiling subpackage and nothing else, and its Dashboard section
  describes every tab, in the dashboard's order.

Each check is shown failing on a planted bad snippet at the end, through the same functions.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.doc_checks import (
    ALLOWED_MISSING,
    DOCS,
    REPO_ROOT,
    Snippet,
    all_snippets,
    allowed_by,
    architecture_bullet_packages,
    architecture_packages,
    bare_option_problems,
    check_snippets,
    cli_calls,
    cli_problems,
    exists_in_repo,
    fenced_blocks,
    make_problems,
    name_problems,
    path_problem,
    path_tokens,
    profiling_subpackages,
    readme_dashboard_tabs,
    route_problems,
    script_problems,
    snippets,
    sweep_key_problems,
    tab_problems,
    tab_titles,
)


@pytest.fixture(scope="module")
def doc_snippets() -> list[Snippet]:
    return all_snippets()


def test_docs_are_read(doc_snippets: list[Snippet]) -> None:
    """The reader finds what the checks depend on: many commands (most of them whole, so parsed) and paths."""
    calls = [c for s in doc_snippets for c in cli_calls(s)]
    assert len(calls) >= 40
    assert sum(c.complete for c in calls) >= 30
    assert len([t for s in doc_snippets for t in path_tokens(s)]) >= 100
    assert not any(d.is_relative_to(REPO_ROOT / "docs" / "notebooks") and d.suffix == ".html" for d in DOCS)


def test_every_profiling_command_parses(doc_snippets: list[Snippet]) -> None:
    problems = [p for s in doc_snippets for c in cli_calls(s) for p in cli_problems(c)]
    assert not problems, "\n".join(problems)


def test_every_script_and_module_run_exists_with_its_options(doc_snippets: list[Snippet]) -> None:
    problems = [p for s in doc_snippets for p in script_problems(s)]
    assert not problems, "\n".join(problems)


def test_every_path_named_exists(doc_snippets: list[Snippet]) -> None:
    problems = [f"{p} (line {s.line})" for s in doc_snippets for t in path_tokens(s)
                if (p := path_problem(t, s.doc))]
    assert not problems, "\n".join(problems)


def test_every_make_target_exists(doc_snippets: list[Snippet]) -> None:
    problems = [p for s in doc_snippets for p in make_problems(s)]
    assert not problems, "\n".join(problems)


def test_every_route_named_is_served(doc_snippets: list[Snippet]) -> None:
    problems = [p for s in doc_snippets for p in route_problems(s)]
    assert not problems, "\n".join(problems)


def test_every_option_named_alone_exists(doc_snippets: list[Snippet]) -> None:
    problems = [p for s in doc_snippets for p in bare_option_problems(s)]
    assert not problems, "\n".join(problems)


def test_every_python_name_named_exists(doc_snippets: list[Snippet]) -> None:
    problems = [p for s in doc_snippets for p in name_problems(s)]
    assert not problems, "\n".join(problems)


def test_every_sweep_file_shown_uses_known_keys() -> None:
    problems = [p for doc in DOCS for p in sweep_key_problems(doc, doc.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)
    assert any(lang == "yaml" for doc in DOCS for _, lang, _ in fenced_blocks(doc.read_text(encoding="utf-8")))


def test_every_tab_named_is_a_dashboard_tab() -> None:
    problems = [p for doc in DOCS for p in tab_problems(doc, doc.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)


def test_readme_dashboard_section_describes_every_tab_in_order() -> None:
    described = readme_dashboard_tabs((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert tuple(described) == tab_titles()


def test_allow_list_entries_are_still_needed(doc_snippets: list[Snippet]) -> None:
    """An allow-list entry no doc needs (or one that now exists) goes, so the list cannot hide a real path."""
    missing = [t for s in doc_snippets for t in path_tokens(s) if not exists_in_repo(t, s.doc)]
    unused = [key for key in ALLOWED_MISSING if not any(allowed_by(key, t) for t in missing)]
    assert not unused, f"allow-list entries no doc needs: {unused}"


@pytest.mark.parametrize("where", [architecture_packages, architecture_bullet_packages])
def test_readme_architecture_names_every_profiling_subpackage(where: Callable[[str], set[str]]) -> None:
    named = where((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    actual = profiling_subpackages()
    assert named == actual, f"named but absent: {sorted(named - actual)}; present but unnamed: {sorted(actual - named)}"


# --- each check fails on a planted bad snippet ----------------------------------------------------------------

PLANTED_DOC = REPO_ROOT / "docs" / "planted.md"


def planted(markdown: str) -> list[str]:
    return (check_snippets(snippets(PLANTED_DOC, markdown)) + tab_problems(PLANTED_DOC, markdown)
            + sweep_key_problems(PLANTED_DOC, markdown))


def test_the_snippets_pass_the_same_checker_when_good() -> None:
    good = """
```bash
$PY -m profiling bench --engine piper --text "Hi." --repeats 2   # a comment naming nothing/real.md
make test
$PY -m profiling sweep sweeps/piper_quick.yaml \\
    --executor ray --workers 2
```
See `profiling/loadgen/metrics.py`, `serve/`, `sweep FILE --dry-run`, `GET /v1/timelines/{id}`,
`engines.errors.InputError`, `api.find_capacity(...)`, the **Load** tab and [the sweeps page](sweeps.md).

    python -m profiling engines --knobs
"""
    assert planted(good) == []


@pytest.mark.parametrize(("markdown", "expected"), [
    ("```bash\n$PY -m profiling benchmark --engine piper\n```", "no subcommand 'benchmark'"),
    ("```bash\n.venv/bin/python -m profiling bench --engine piper --repeat 5\n```", "no option --repeat"),
    ("```bash\npython -m profiling load --null --format mp3\n```", "does not parse"),
    ("```bash\n$PY -m profiling bench --engine piper --repeats five\n```", "does not parse"),
    ("```bash\n$PY -m profiling sweep sweeps/piper_quick.yaml \\\n  --worker 2\n```", "no option --worker"),
    ("Run `python -m profiling stream --first-chunk 20`.", "no option --first-chunk"),
    ("Use `load --slo-ttfa 500` for that.", "no option --slo-ttfa"),
    ("`profiling loadtest` measures it.", "no subcommand 'loadtest'"),
    ("    python -m profiling trace RUN --format json\n", "no option --format"),
    ("```bash\n$PY -m profiling.roofline.flops --engine kokoro\n```", "no module or script"),
    ("```bash\n$PY benchmarks/gpu_suite.py --output gpu-out\n```", "has no option --output"),
    ("Text sets live in `profiling/textsets/*.txt`.", "no 'profiling/textsets/*.txt'"),
    ("The load generator (`load/`) sends requests.", "no 'load/'"),
    ("See [the page](gone.md).", "no 'gone.md'"),
    ("Written by `scripts/device_wheels.sh`.", "no 'scripts/device_wheels.sh'"),
    ("The knobs (engines/torch_knob.py) are shared.", "no 'engines/torch_knob.py'"),
    ("```bash\nmake tests\n```", "no Makefile target 'tests'"),
    ("Then `make device-wheel`.", "no Makefile target 'device-wheel'"),
    ("`GET /v1/timeline/{id}` returns it.", "no route /v1/timeline/{id}"),
    ("Raise `engines.errors.InputErr` there.", "engines.errors has no 'InputErr'"),
    ("`profiling.analysis.paretto.sweep_quality` gives it.", "no 'paretto'"),
    ("Call `api.find_capacities(...)`.", "profiling.api has no 'find_capacities'"),
    ("```python\nfrom profiling import bench, benchmark\n```", "`from profiling import benchmark` is not exported"),
    ("Sweeps run from the Compare tab.", "no tab 'Compare'"),
    ("Pre-buffer with `--pre-buffer-ms 200`.", "no command here takes --pre-buffer-ms"),
    ("```yaml\nname: x\nengines:\n  - engine: piper\n    knob: {a: 1}\nrepeat: 3\n```", "sweep key 'repeat' unknown"),
    ("```yaml\nname: x\nengines:\n  - engine: piper\n    knob: {a: 1}\n```", "engines entry key 'knob' unknown"),
])
def test_a_planted_mismatch_is_flagged(markdown: str, expected: str) -> None:
    problems = planted(markdown)
    assert any(expected in p for p in problems), problems


def test_a_planted_architecture_drift_is_flagged() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    drifted = readme.replace("|   serve/", "|   served/", 1).replace("`loadgen/` (the", "`load/` (the", 1)
    assert drifted.count("served/") == readme.count("served/") + 1 and "`load/` (the" in drifted
    assert architecture_packages(drifted) != profiling_subpackages()
    assert architecture_bullet_packages(drifted) != profiling_subpackages()


def test_a_planted_dashboard_section_drift_is_flagged() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    drifted = readme.replace("\n- **History**:", "\n- **Runs**:", 1)
    assert drifted != readme
    assert tuple(readme_dashboard_tabs(drifted)) != tab_titles()
