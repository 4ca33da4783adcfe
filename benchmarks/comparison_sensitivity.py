"""How small a difference can a comparison see on this machine, and how often does it see one that is not there?

Piper (deterministic, one ORT thread unless the row changes it), one sentence. Three ways to compare:

- separate batches: A/A batches (model reloaded per batch) judged pair by pair with the interval widened by
  the batch-to-batch spread (leave-one-batch-out, as ``compare`` does after ``calibrate``);
- today's ``ab`` (``--design alternate``): two loaded models alternating run by run, pairs run by run;
- the new ``ab`` (``--design auto``): one model for a per-call knob, kept-apart switches (blocks) for two,
  both models reloaded every few segments (epochs) so two loaded copies are not taken for two settings;
  on A/A also forced to two models, with and without the reloads.

Each is run on A/A (same settings both sides: the false-call rate), planted length changes (``length_scale``
1.0 -> 1.05, the knob's 5 %, and 1.0 -> 1.15, 5 % more audio on this sentence; per-call knobs) and a
thread-count change (``intra_op_threads`` 1 -> 2, a load-time knob). Sessions of the designs are
interleaved, so drift of the machine falls on all alike. All ``ab`` rows use the same estimator (signed-rank
interval of the per-pair log ratios, widened to the spread between epochs where there are reloads): the rows
differ in design.

    python benchmarks/comparison_sensitivity.py --out docs/benchmarks/comparison-sensitivity-cpu.md
    python benchmarks/comparison_sensitivity.py --quick --out /tmp/sensitivity.md   # a minute: a smoke run
    python benchmarks/comparison_sensitivity.py --designs auto,blocks --batches 0 --out x.md  # a subset
    python benchmarks/comparison_sensitivity.py --designs auto --planted 0 --batches 0 --sessions 100 \
        --keep-store /tmp/aa-runs --out x.md      # one-model A/A only, its runs kept for offline analysis
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.base import SynthesisSettings  # noqa: E402
from profiling.analysis.compare import ratio  # noqa: E402
from profiling.analysis.noise import aa_checks  # noqa: E402
from profiling.core.environment import capture_environment  # noqa: E402
from profiling.core.records import RunStatus  # noqa: E402
from profiling.run.ab import AbRequest, AbResult, run_ab  # noqa: E402
from profiling.run.ab_design import DEFAULT_RELOAD_EVERY, AbDesign  # noqa: E402
from profiling.run.runner import BenchRequest, EnginePool, run_bench  # noqa: E402
from profiling.store.results import ResultsStore  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog."
BASE = {"deterministic": True, "intra_op_threads": 1}
CHANGES = {
    "A/A": ({}, {}),
    "length_scale 1.0 -> 1.05": ({"length_scale": 1.0}, {"length_scale": 1.05}),
    "length_scale 1.0 -> 1.15 (5 % more audio)": ({"length_scale": 1.0}, {"length_scale": 1.15}),
    "intra_op_threads 1 -> 2": ({"intra_op_threads": 1}, {"intra_op_threads": 2}),
}
#: Row label -> (short key for --designs, design, reload_every).
DESIGNS = {"today's ab (alternate)": ("alternate", AbDesign.ALTERNATE, 0),
           "new ab (auto)": ("auto", AbDesign.AUTO, DEFAULT_RELOAD_EVERY)}
#: A/A also with the new design forced to two loaded models (auto picks one model for identical sides).
AA_DESIGNS = {**DESIGNS,
              "new ab (blocks, two models, one copy each)": ("blocks0", AbDesign.BLOCKS, 0),
              f"new ab (blocks, two models, reloaded every {DEFAULT_RELOAD_EVERY} segments)":
                  ("blocks", AbDesign.BLOCKS, DEFAULT_RELOAD_EVERY)}


def _settings(**knobs: object) -> SynthesisSettings:
    return SynthesisSettings("piper", knobs={**BASE, **knobs})


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True)
class Verdict:
    ratio: float
    low: float
    high: float
    audio_ratio: float = float("nan")
    #: Set where the call was made another way (A/A batch pairs: the leave-one-batch-out widened interval).
    called: bool | None = None

    @property
    def different(self) -> bool:
        return self.called if self.called is not None else not (self.low <= 1.0 <= self.high)

    @property
    def detectable(self) -> float:
        return math.expm1((math.log(self.high) - math.log(self.low)) / 2)


def batch(store: ResultsStore, settings: SynthesisSettings, repeats: int) -> tuple[list[float], list[float]]:
    """One separate batch (its own model load and warm-up): synthesis times and audio lengths."""
    pool = EnginePool()
    result = run_bench(BenchRequest(settings, TEXT, repeats=repeats, warmup=1, label="batch"), pool, store)
    pool.clear()
    ok = [r for r in result.records if not r.warmup and r.status is RunStatus.OK]
    return [r.synth_s for r in ok], [r.audio_s for r in ok]


def separate_rows(store: ResultsStore, batches: int, repeats: int, planted: int) -> dict[str, list[Verdict]]:
    """A/A batch pairs judged with the widened interval; each planted B batch against every A batch."""
    base = [batch(store, _settings(), repeats) for _ in range(batches)]
    times = [t for t, _ in base]
    checks, sigma = aa_checks(times)
    rows: dict[str, list[Verdict]] = {"A/A": []}
    for c in checks:
        r = ratio("synth_s", times[c.first], times[c.second], between_sigma=sigma)
        rows["A/A"].append(Verdict(r.ratio, r.ci_low, r.ci_high, called=c.widened_flagged))
    for name, (_, b_knobs) in list(CHANGES.items())[1:]:
        rows[name] = []
        for _ in range(planted):
            b_times, b_audio = batch(store, _settings(**b_knobs), repeats)
            for a_times, a_audio in base:
                r = ratio("synth_s", a_times, b_times, between_sigma=sigma)
                audio = float(np.median(b_audio) / np.median(a_audio))
                rows[name].append(Verdict(r.ratio, r.ci_low, r.ci_high, audio))
    return rows


def session(store: ResultsStore, change: str, design: tuple[str, AbDesign, int], pairs: int) -> AbResult:
    a, b = CHANGES[change]
    _, chosen, reload_every = design
    return run_ab(AbRequest(_settings(**a), _settings(**b), TEXT, pairs=pairs, design=chosen,
                            reload_every=reload_every), store)


def verdict(result: AbResult) -> Verdict:
    synth, audio = result.summary.estimate("synth_s"), result.summary.estimate("audio_s")
    assert synth is not None
    return Verdict(synth.ratio, synth.ci_low, synth.ci_high, audio.ratio if audio is not None else float("nan"))


def _needed(result: AbResult, target: float = 0.03) -> float:
    main = result.summary.estimate()
    needed = main.pairs_needed(target) if main is not None else None
    return float(needed) if needed is not None else float("nan")


def _fmt_rate(verdicts: Sequence[Verdict]) -> str:
    return f"{sum(v.different for v in verdicts)} of {len(verdicts)}"


def _calibration(verdicts: Sequence[Verdict]) -> str:
    """How far the A/A centres spread (SD of their log ratios) over the spread their intervals imply (median
    half-width / 1.96): about 1 when the intervals are calibrated, above 1 when they are too narrow."""
    if len(verdicts) < 3:
        return ""
    centres = np.log([v.ratio for v in verdicts])
    implied = np.median([(math.log(v.high) - math.log(v.low)) / 2 / 1.96 for v in verdicts])
    spread = float(np.std(centres, ddof=1))
    return f"{spread:.2%} / {implied:.2%} = {spread / implied:.2f}"


def _fmt_planted(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return ""
    r = np.median([v.ratio for v in verdicts])
    low, high = np.median([v.low for v in verdicts]), np.median([v.high for v in verdicts])
    return f"{r:.3f} ({low:.3f}..{high:.3f}); detected {_fmt_rate(verdicts)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="A/A sessions per ab design")
    parser.add_argument("--pairs", type=int, default=20, help="pairs per ab session")
    parser.add_argument("--planted", type=int, default=2, help="sessions (ab) / B batches (separate) per change")
    parser.add_argument("--batches", type=int, default=8, help="A/A separate batches")
    parser.add_argument("--repeats", type=int, default=5, help="runs per separate batch")
    parser.add_argument("--designs", default=",".join(k for k, _, _ in AA_DESIGNS.values()),
                        help="ab designs to run (comma list of " + ", ".join(k for k, _, _ in AA_DESIGNS.values())
                             + "; default all)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 sessions x 8 pairs, 4 batches x 3")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep-store", type=Path, metavar="DIR",
                        help="store the sessions' runs in DIR (kept) rather than a temporary store: every pair and its "
                             "ab_* annotations, for judging another estimator offline on the same runs")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.pairs, args.planted, args.batches, args.repeats = 2, 8, 1, 4, 3
    load_before, started = loadavg(), time.monotonic()
    ab: dict[tuple[str, str], list[AbResult]] = {}
    chosen = set(args.designs.split(","))
    aa_designs = {label: d for label, d in AA_DESIGNS.items() if d[0] in chosen}
    designs = {label: d for label, d in DESIGNS.items() if d[0] in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(args.keep_store or tmp)
        separate = separate_rows(store, args.batches, args.repeats, args.planted) if args.batches >= 2 else {}
        plan = [("A/A", args.sessions, aa_designs), *((c, args.planted, designs) for c in list(CHANGES)[1:])]
        for change, count, designs in plan:
            # interleaved: session i of every design before session i + 1 of any
            for _, (label, design) in itertools.product(range(count), designs.items()):
                ab.setdefault((change, label), []).append(session(store, change, design, args.pairs))
    wall, load_after = time.monotonic() - started, loadavg()
    env = capture_environment()
    quick = " --quick" if args.quick else ""
    lines = [
        f"# Comparison sensitivity on this machine: Piper, CPU ({datetime.now(timezone.utc):%Y-%m-%d})",
        "",
        f"Command: `python benchmarks/comparison_sensitivity.py{quick} --sessions {args.sessions} --pairs "
        f"{args.pairs} --planted {args.planted} --batches {args.batches} --repeats {args.repeats} --designs "
        f"{args.designs}` ({wall:.0f} s).",
        f"Device: {env.cpu_model}, {env.logical_cores} logical cores; Python {env.python}; onnxruntime "
        f"{env.packages.get('onnxruntime', '?')}, piper-tts {env.packages.get('piper-tts', '?')}; commit "
        f"{env.git_commit}. Load average (1/5/15 min) before {load_before}, after {load_after}.",
        f"Settings: piper fp32, deterministic, intra_op_threads 1 (unless changed), text \"{TEXT}\"; metric: "
        "synthesis time; 95 % intervals.",
        "",
        "## A/A: how often a comparison names a difference that is not there, and what it could have seen",
        "",
        "| comparison | units | A/A called different | median smallest detectable | pairs for ±3 % "
        "| runs (s) per unit | centres' SD / implied SD |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    if separate:
        lines.append(f"| separate batches, widened interval | {len(separate['A/A'])} batch pairs ({args.batches} "
                     f"batches x {args.repeats} runs) | {_fmt_rate(separate['A/A'])} | "
                     f"±{np.median([v.detectable for v in separate['A/A']]):.1%} | | {args.repeats + 1} per batch | |")
    for (change, label), results in ab.items():
        if change != "A/A":
            continue
        v = [verdict(r) for r in results]
        need = np.median([_needed(r) for r in results])
        runs, secs = np.median([len(r.records) for r in results]), np.median([r.elapsed_s for r in results])
        lines.append(f"| {label} | {len(v)} sessions x {args.pairs} pairs | {_fmt_rate(v)} | "
                     f"±{np.median([x.detectable for x in v]):.1%} | {need:.0f} | {runs:.0f} ({secs:.0f} s) | "
                     f"{_calibration(v)} |")
    lines += [
        "",
        "## Planted changes: B/A of synthesis time (median over sessions of ratio and interval ends)",
        "",
        "| comparison | " + " | ".join(list(CHANGES)[1:]) + " |",
        "|---|" + "--:|" * (len(CHANGES) - 1),
    ]
    if separate:
        lines.append("| separate batches, widened | " + " | ".join(_fmt_planted(separate[c]) for c in list(CHANGES)[1:])
                     + " |")
    for label in designs:
        lines.append(f"| {label} | " + " | ".join(_fmt_planted([verdict(r) for r in ab.get((c, label), [])])
                                                  for c in list(CHANGES)[1:]) + " |")
    audio = {c: np.median([verdict(r).audio_ratio for r in results]) for (c, _), results in ab.items()
             if c.startswith("length_scale")}
    lines += ["", "Audio B/A of the length changes (what synthesis time roughly follows): "
              + ", ".join(f"{c}: {v:.3f}" for c, v in audio.items()) + ".",
              "", "## Switch penalty: a run right after the other model ran, over the next run of the same side", "",
              "| sessions | side | after switch / after repeat (median) | 95 % CI (median ends) |", "|---|---|--:|--:|"]
    for key in ab:
        if key[1] not in ("new ab (auto)", "today's ab (alternate)") and key[0] != "A/A":
            continue
        for side in ("A", "B"):
            pens = [p.estimate for r in ab.get(key, []) for p in r.summary.switch if p.side == side]
            if pens:
                lines.append(f"| {key[0]}, {key[1]} | {side} | {np.median([p.ratio for p in pens]):.3f} | "
                             f"{np.median([p.ci_low for p in pens]):.3f}..{np.median([p.ci_high for p in pens]):.3f} |")
    lines += ["", "(length_scale sessions of the new design load one model: their \"switch\" is a change of per-call "
              "settings only, a control.)", ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
