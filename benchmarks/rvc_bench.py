"""The RVC stage against the seed performance plan's targets, measured with full-size random weights.

Targets (the pipeline text -> XTTS -> RVC this lab was made for):
  RVC RTF < 0.5 at 1, 5, 10 and 30 s of audio; XTTS+RVC overhead < 100 % of XTTS alone; model load < 2 s
  (a 25 MB model); a cached model in < 10 ms; < 500 MB resident before any model loads; < 50 MB growth
  over 100 conversions; the full pipeline for a 10-word text < 3 s.

The source audio is real speech (the bundled Piper voice), so the pitch tracker sees voiced frames. RVC
runs with random weights at full size (rvc-next's v2 40 kHz synthesizer, HuBERT base, RMVPE): the compute
of the real models, the audio noise. XTTS runs full size with random weights too (its stop token is
suppressed, so ``--xtts-tokens`` sets how much audio a "10-word text" gives).

    python benchmarks/rvc_bench.py --out docs/benchmarks/rvc-cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEN_WORDS = "Please leave the parcel with the neighbour across the street today."
LONG_TEXT = (
    "The quick brown fox jumps over the lazy dog. Measuring speech synthesis tells us where the time goes. "
    "Voice conversion follows the text to speech stage in many real pipelines, and it has its own cost. "
    "Every stage is timed, so the table shows which one to make faster first. "
) * 3


@dataclass
class Row:
    target: str
    measured: str
    verdict: str
    detail: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    rtf: list[dict[str, object]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def resident_before_models() -> float:
    """RSS of a fresh process that imported everything the lab needs to convert, before any model is built."""
    code = (
        "import psutil, profiling.api, profiling.run.runner, engines.convert.rvc.converter, engines.convert.rvc.models,"
        " engines.convert.rvc.pipeline, engines.piper_engine, torch, transformers, faiss, parselmouth, librosa;"
        " import rvc_next.engine.models.synthesizer, rvc_next.engine.features.hubert, rvc_next.engine.f0.rmvpe;"
        " from rvc_next.engine.features.hubert import _model_class; _model_class();"
        " print(psutil.Process().memory_info().rss / 2**20)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def speech(seconds: float):  # noqa: ANN201 - engines.base.Audio, imported lazily
    """Real speech from the bundled Piper voice, cut to ``seconds``."""
    from engines.base import Audio, SynthesisSettings, Voice
    from engines.registry import create_engine

    engine = create_engine("piper")
    settings = SynthesisSettings("piper", knobs={})
    from engines.validation import resolve_settings

    settings = resolve_settings(engine.capabilities, settings, ("cpu",))
    engine.load(settings)
    audio = engine.synthesize(LONG_TEXT, Voice(), settings)
    count = int(seconds * audio.sample_rate)
    if count > len(audio.samples):
        raise SystemExit(f"the speech is only {audio.duration_s:.1f} s long")
    return Audio(audio.samples[:count].copy(), audio.sample_rate)


def settings_for(**knobs: object):  # noqa: ANN201
    from engines.base import SynthesisSettings
    from engines.convert.registry import converter_class
    from engines.validation import resolve_settings

    cls = converter_class("rvc")
    return resolve_settings(cls.capabilities, SynthesisSettings("rvc", knobs=knobs), cls.machine_devices())


def measure_rtf(report: Report, durations: list[float], repeats: int, f0_methods: list[str]) -> None:
    from profiling.core.timer import StageTimer
    from profiling.run.conversion import ConverterPool

    pool = ConverterPool()
    source = speech(max(durations))
    for method in f0_methods:
        settings = settings_for(f0_method=method)
        converter, _ = pool.acquire(settings)
        converter.convert(speech(1.0), settings)  # warm-up: first-call allocations and lazy imports
        for seconds in durations:
            from engines.base import Audio

            audio = Audio(source.samples[: int(seconds * source.sample_rate)].copy(), source.sample_rate)
            times, stages = [], {}
            for _ in range(repeats):
                timer = StageTimer()
                start = time.perf_counter()
                converter.convert(audio, settings, timer)
                times.append(time.perf_counter() - start)
                for t in timer.timings():
                    stages.setdefault(t.name, []).append(t.inclusive_s)
            median = statistics.median(times)
            report.rtf.append({
                "f0_method": method, "audio_s": seconds, "median_s": median, "rtf": median / seconds,
                "min_rtf": min(times) / seconds, "repeats": repeats,
                "stages": {k: statistics.median(v) / seconds for k, v in stages.items()},
            })
            print(f"rtf {method} {seconds:g} s: {median / seconds:.3f}", flush=True)
    pool.clear()


def measure_load_and_cache(report: Report, work: Path) -> None:
    from engines.convert.rvc import models
    from profiling.core.timer import StageTimer
    from profiling.run.conversion import ConverterPool

    voice = models.random_voice("random-full", 40000, "cpu", False)
    path = models.save_voice(voice, work / "random-full-40k.pth")
    size_mb = path.stat().st_size / 1e6
    del voice
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        models.load_voice_file(str(path), 40000, "cpu", False)
        loads.append(time.perf_counter() - start)
    load = statistics.median(loads)
    report.rows.append(Row("model load < 2 s (25 MB model)", f"{load:.2f} s median of 3 ({size_mb:.0f} MB file)",
                           verdict(load < 2.0),
                           "the synthesizer file through rvc-next's reader (fp16 on disk, as RVC exports are)"))
    pool = ConverterPool()
    settings = settings_for(weights=str(path), index="random")
    timer = StageTimer()
    _, first = pool.acquire(settings, timer)
    report.extra["whole_stage_load"] = {t.name: round(t.inclusive_s, 3) for t in first.stages}
    hits = []
    for _ in range(200):
        _, again = pool.acquire(settings)
        hits.append(again.acquire_s)
    hit_ms = statistics.median(hits) * 1000
    report.rows.append(Row("cached model < 10 ms", f"{hit_ms:.4f} ms median of 200 (max {max(hits) * 1000:.3f} ms)",
                           verdict(hit_ms < 10),
                           "ConverterPool.acquire on a hit (the run records convert_cache=hit)"))
    report.extra["resident_after_models_mb"] = round(rss_mb(), 1)
    pool.clear()


def measure_growth(report: Report, conversions: int, settle: int) -> None:
    import gc

    from profiling.run.conversion import ConverterPool

    pool = ConverterPool()
    settings = settings_for(f0_method="rmvpe")
    converter, _ = pool.acquire(settings)
    audio = speech(1.0)
    series = []
    for _ in range(conversions):
        converter.convert(audio, settings)
        series.append(rss_mb())
    gc.collect()
    growth = series[-1] - series[settle - 1]
    report.extra["growth_series_mb"] = [round(v, 1) for v in series]
    report.rows.append(Row(f"< 50 MB growth over {conversions} conversions",
                           f"{growth:+.1f} MB from conversion {settle} to {conversions} "
                           f"(first {series[0]:.0f} MB, last {series[-1]:.0f} MB)",
                           verdict(growth < 50), "1 s of speech each, full-size models, RSS after each"))
    pool.clear()


def measure_pipeline(report: Report, work: Path, repeats: int, xtts_tokens: int, threads: int) -> None:
    """XTTS alone against XTTS -> RVC in the same runs (tts_rtf, convert_rtf), and Piper -> RVC."""
    import soundfile

    from profiling import api

    reference = speech(6.0)
    ref_path = work / "reference.wav"
    soundfile.write(ref_path, reference.samples, reference.sample_rate)
    rvc = api.conversion_settings("rvc", knobs={"f0_method": "rmvpe"})
    xtts_knobs = {"weights": "random-full", "max_audio_tokens": xtts_tokens, "voice_cache": "memory",
                  "torch_threads": threads}
    for engine, knobs, voice in (("xtts", xtts_knobs, ref_path), ("piper", {}, None)):
        request = api.bench_request(engine, TEN_WORDS, repeats=repeats, warmup=1, knobs=knobs,
                                    reference_audio=voice, conversion=rvc)
        records = [r for r in api.run_request(request, save=False).records if not r.warmup]
        if any(r.status.value != "ok" for r in records):
            raise SystemExit(f"{engine}: {records[0].error}")
        total = statistics.median(r.synth_s for r in records)
        tts = statistics.median(r.synth_s - (r.convert_s or 0) for r in records)
        conv = statistics.median(r.convert_s or 0 for r in records)
        audio = statistics.median(r.audio_s for r in records)
        report.extra[f"{engine}_pipeline"] = {"total_s": total, "tts_s": tts, "convert_s": conv, "audio_s": audio,
                                              "tts_rtf": tts / audio, "pipeline_rtf": total / audio}
        if engine == "xtts":
            overhead = conv / tts
            report.rows.append(Row("XTTS+RVC overhead < 100 % of XTTS alone",
                                   f"+{overhead:.0%} (XTTS RTF {tts / audio:.2f} -> {total / audio:.2f})",
                                   verdict(overhead < 1.0),
                                   f"same runs, {audio:.1f} s of audio ({xtts_tokens} GPT tokens), {repeats} runs"))
        report.rows.append(Row(f"10-word text through {engine.upper()} -> RVC < 3 s",
                               f"{total:.2f} s median ({tts:.2f} s {engine} + {conv:.2f} s RVC, {audio:.1f} s audio)",
                               verdict(total < 3.0), f'"{TEN_WORDS}"'))


def render(report: Report, args: argparse.Namespace, started: str) -> str:
    import platform

    import torch

    lines = [
        "# RVC v2 stage against the seed targets (CPU, full-size random weights)",
        "",
        f"Measured {started} with `{' '.join(sys.argv)}` on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.2f} at the end; torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads). Models: rvc-next 0.2.16's v2 40 kHz synthesizer, "
        "HuBERT base (transformers), RMVPE, all with random weights at full size (real compute, noise audio). "
        "Source audio: the bundled Piper voice's speech.",
        "",
        "| seed target | measured | verdict | how |",
        "|---|---|---|---|",
    ]
    for method in sorted({r["f0_method"] for r in report.rtf}):
        rows = [r for r in report.rtf if r["f0_method"] == method]
        ok = all(r["rtf"] < 0.5 for r in rows)
        figures = ", ".join(f"{r['audio_s']:g} s: {r['rtf']:.2f}" for r in rows)
        lines.append(f"| RVC RTF < 0.5 at 1/5/10/30 s (f0 {method}) | {figures} | {verdict(ok)} | "
                     f"median of {rows[0]['repeats']} after a warm-up |")
    for row in report.rows:
        lines.append(f"| {row.target} | {row.measured} | {row.verdict} | {row.detail} |")
    lines += ["", "## Where the conversion time goes (RTF share per stage, median)", "",
              "| f0 | audio s | total RTF | " + " | ".join(STAGES) + " |",
              "|---|---|---|" + "---|" * len(STAGES)]
    for r in report.rtf:
        stages = r["stages"]
        lines.append(f"| {r['f0_method']} | {r['audio_s']:g} | {r['rtf']:.3f} | "
                     + " | ".join(f"{stages.get(s, 0):.3f}" for s in STAGES) + " |")
    lines += ["", "## Other figures", "", "```", json.dumps(
        {k: v for k, v in report.extra.items() if k != "growth_series_mb"}, indent=1, default=float), "```", ""]
    return "\n".join(lines)


STAGES = ("resample_in", "f0", "hubert", "synthesizer", "rms_mix")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="markdown report (JSON beside it)")
    parser.add_argument("--durations", default="1,5,10,30")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--f0", default="rmvpe,pm", help="F0 methods for the RTF rows")
    parser.add_argument("--growth", type=int, default=100, help="conversions for the growth row")
    parser.add_argument("--settle", type=int, default=10)
    parser.add_argument("--xtts-tokens", type=int, default=70, help="GPT tokens (~3.2 s of audio) for 10 words")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: rtf,load,growth,pipeline")
    args = parser.parse_args()
    import torch

    threads = torch.get_num_threads()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = Report()
    skip = set(args.skip.split(",")) - {""}
    resident = resident_before_models()
    report.rows.append(Row("< 500 MB resident before any model loads", f"{resident:.0f} MB", verdict(resident < 500),
                           "fresh process after importing the lab, torch, transformers' HuBERT, faiss, rvc-next"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "load" not in skip:
            measure_load_and_cache(report, work)
        if "rtf" not in skip:
            measure_rtf(report, [float(d) for d in args.durations.split(",")], args.repeats, args.f0.split(","))
        if "growth" not in skip:
            measure_growth(report, args.growth, args.settle)
        if "pipeline" not in skip:
            measure_pipeline(report, work, args.repeats, args.xtts_tokens, threads)
    text = render(report, args, started)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(asdict(report), indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
