"""py-spy: sample this very process from a subprocess while synthesis runs.

py-spy attaches with ptrace. Where the OS refuses (no root, no
CAP_SYS_PTRACE, Yama ptrace_scope), the result says so and the other
profilers carry on.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from engines.base import Engine
from engines.errors import InputError
from profiling.profilers.artifacts import write_table
from profiling.profilers.common import (
    ArtifactFile,
    ProfileContext,
    ProfileOptions,
    Profiler,
    ProfilerResult,
    ProfilerStatus,
    ProfileTable,
)
from profiling.profilers.flamegraph import (
    Stack,
    below_frame,
    flamegraph_svg,
    function_totals,
    merge_speedscope,
    read_speedscope,
)

ATTACH_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 60.0
MAX_RATE = 2000
_DENIED_MARKERS = ("permission denied", "operation not permitted", "ptrace", "elevated permissions")
DENIED_HINT = (
    "ptrace is not allowed here: run as root, grant CAP_SYS_PTRACE, set kernel.yama.ptrace_scope=0, "
    "or give a prefix such as 'sudo -n'"
)


def find_pyspy() -> str | None:
    """py-spy beside this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


class PySpyError(Exception):
    def __init__(self, message: str, denied: bool) -> None:
        super().__init__(message)
        self.denied = denied


class PySpyRecorder:
    """``py-spy record --pid <this process>`` from start() until stop(); writes speedscope JSON."""

    def __init__(self, output: Path, rate: int, native: bool, prefix: tuple[str, ...] = ()) -> None:
        executable = find_pyspy()
        if executable is None:
            raise PySpyError("py-spy is not installed (pip install -e .[profilers])", denied=False)
        self.output = output
        self.command = [
            *prefix, executable, "record", "--pid", str(os.getpid()), "--rate", str(rate),
            "--format", "speedscope", "--output", str(output),
            *(["--native"] if native else []),
        ]
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []

    def _pump(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line.rstrip())
        self._lines.put(None)

    def start(self) -> None:
        """Start py-spy and wait until it samples; PySpyError (denied or not) if it cannot."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, errors="replace",
            )
        except OSError as error:
            raise PySpyError(f"cannot start py-spy: {error}", denied=False) from None
        threading.Thread(target=self._pump, name="py-spy-output", daemon=True).start()
        while True:
            try:
                line = self._lines.get(timeout=ATTACH_TIMEOUT_S)
            except queue.Empty:
                self.kill()
                raise PySpyError(f"py-spy did not start sampling within {ATTACH_TIMEOUT_S:.0f} s", False) from None
            if line is None:  # py-spy exited before sampling: it could not attach
                self._process.wait()
                raise self._failure()
            self.log.append(line)
            if "Sampling process" in line:
                return

    def _failure(self) -> PySpyError:
        text = " ".join(line for line in self.log if line).strip() or "no output"
        denied = any(marker in text.lower() for marker in _DENIED_MARKERS)
        code = self._process.returncode if self._process else None
        if denied:
            return PySpyError(f"py-spy could not attach (exit {code}): {text}. {DENIED_HINT}", denied=True)
        return PySpyError(f"py-spy failed (exit {code}): {text}", denied=False)

    def stop(self) -> None:
        """Ask py-spy to finish (SIGINT, as Ctrl-C) and wait for its file."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise PySpyError("py-spy did not stop in time", denied=False) from None
        while (line := self._lines.get(timeout=5)) is not None:
            self.log.append(line)
        if not self.output.is_file():
            raise self._failure()

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


class PySpyProfiler(Profiler):
    name = "pyspy"
    title = "py-spy"

    def unavailable_reason(self, engine_cls: type[Engine]) -> str | None:
        if find_pyspy() is None:
            return "py-spy is not installed (pip install -e .[profilers])"
        return None

    def validate(self, engine_cls: type[Engine], options: ProfileOptions) -> None:
        if not 1 <= options.pyspy_rate <= MAX_RATE:
            raise InputError(f"py-spy rate must be 1..{MAX_RATE} samples/s, got {options.pyspy_rate}")

    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        options = ctx.options
        thread_ids: set[int] = set()

        @contextmanager
        def around() -> Iterator[None]:
            thread_ids.add(threading.get_native_id())  # keep this thread's samples only
            yield

        recordings: list[Path] = []
        records = []
        # One py-spy attach per profiled run, so the paired plain run before it is not sampled.
        for index in range(options.repeats):
            ctx.plain_run(index)
            path = ctx.out_dir / f"pyspy-run{index}.speedscope.json"
            try:
                recorder = PySpyRecorder(path, options.pyspy_rate, options.pyspy_native, options.pyspy_prefix)
                recorder.start()
            except PySpyError as error:
                status = ProfilerStatus.DENIED if error.denied else ProfilerStatus.FAILED
                return ProfilerResult(self.name, status, str(error), records=records)
            try:
                records.append(ctx.run(self.name, index, around=around))
            except BaseException:
                recorder.kill()  # never leave a sampler attached to this process
                raise
            try:
                recorder.stop()
            except PySpyError as error:
                return ProfilerResult(self.name, ProfilerStatus.FAILED, str(error), records=records)
            recordings.append(path)
        speedscope = merge_speedscope(recordings, ctx.out_dir / "pyspy.speedscope.json", thread_ids)
        for path in recordings:
            path.unlink()
        # The file keeps every sample; the table and flame graph show the synthesis call alone.
        stacks = below_frame(read_speedscope(speedscope), "_InstrumentedEngine.", "synthesis")
        table = ProfileTable("functions", "Sampled functions: share of samples on-CPU in the function (self) "
                             "and anywhere below it (total)", _functions_frame(stacks, options.top))
        svg_path = ctx.out_dir / "pyspy.flamegraph.svg"
        mode = "native frames" if options.pyspy_native else "Python frames"
        svg_path.write_text(
            flamegraph_svg(stacks, f"py-spy, {options.pyspy_rate} Hz, {mode}: {ctx.target.settings.engine}"),
            encoding="utf-8",
        )
        artifacts = [
            ArtifactFile("pyspy:speedscope", speedscope, "py-spy samples (open in https://www.speedscope.app)"),
            ArtifactFile("pyspy:flamegraph", svg_path, "flame graph SVG"),
            *write_table(table, ctx.out_dir, self.name),
        ]
        frame = table.frame
        hot = [
            f"{row.function}: {row.self_pct:.0f}% of samples on-CPU here ({row.total_pct:.0f}% incl. callees)"
            for row in frame[frame['self_s'] > 0].head(3).itertuples()
        ]
        samples = sum(stacks.values())
        return ProfilerResult(
            self.name, ProfilerStatus.OK, f"{len(records)} runs; {samples:.2f} s sampled at {options.pyspy_rate} Hz",
            tables=[table], artifacts=artifacts, records=records, hot_spots=hot,
        )


def _functions_frame(stacks: Counter[Stack], top: int) -> pd.DataFrame:
    totals = function_totals(stacks)
    grand = sum(stacks.values()) or 1.0
    frame = pd.DataFrame(
        [{"function": label, "self_s": own, "self_pct": 100.0 * own / grand,
          "total_s": total, "total_pct": 100.0 * total / grand} for label, own, total in totals],
        columns=["function", "self_s", "self_pct", "total_s", "total_pct"],
    )
    # Every sampled function is kept (a few hundred at most): the callers above the hot leaf share
    # one total and a top-N cut would drop them arbitrarily; ``top`` only trims functions never on-CPU.
    frame = frame.sort_values(["self_s", "total_s"], ascending=False).reset_index(drop=True)
    on_cpu = frame[frame["self_s"] > 0]
    callers = frame[frame["self_s"] <= 0].head(max(top, 50))
    return pd.concat([on_cpu, callers], ignore_index=True)
