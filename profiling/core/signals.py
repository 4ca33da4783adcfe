"""What the kernel says about contention around one run: CPU clock, steal time, runnable processes, load.

Read before and after a run (outside its timed window). Anything the kernel does not expose here
(cpufreq is often absent on VMs, /proc is Linux only) is None and left out of the run's annotations.
"""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass
from pathlib import Path

_STAT = Path("/proc/stat")
_LOADAVG = Path("/proc/loadavg")
_FREQ_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"


@dataclass(frozen=True)
class CpuSample:
    taken: float
    #: Mean current clock of the CPUs (MHz), from cpufreq.
    cpu_mhz: float | None
    #: The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal ... (jiffies).
    jiffies: tuple[int, ...] | None
    #: Runnable processes now (this one included), from /proc/stat.
    procs_running: int | None
    load1: float | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except OSError:
        return None


def _cpu_mhz() -> float | None:
    values = []
    for name in glob.glob(_FREQ_GLOB):
        text = _read(Path(name))
        if text and text.strip().isdigit():
            values.append(int(text) / 1000)  # kHz
    return sum(values) / len(values) if values else None


def sample() -> CpuSample:
    stat = _read(_STAT) or ""
    jiffies, running = None, None
    for line in stat.splitlines():
        if line.startswith("cpu "):
            jiffies = tuple(int(v) for v in line.split()[1:])
        elif line.startswith("procs_running "):
            running = int(line.split()[1])
    load = _read(_LOADAVG)
    return CpuSample(time.monotonic(), _cpu_mhz(), jiffies, running, float(load.split()[0]) if load else None)


@dataclass(frozen=True)
class RunSignals:
    cpu_mhz: float | None
    #: Share of all CPU time the hypervisor gave to other guests during the run (%).
    steal_pct: float | None
    #: Share of all CPU time that was busy (not idle/iowait) during the run (%): >100/cores means others ran.
    busy_pct: float | None
    procs_running: int | None
    load1: float | None

    def annotations(self) -> dict[str, float | int]:
        """Present values only, under ``sys_*`` names."""
        values = {"sys_cpu_mhz": self.cpu_mhz, "sys_steal_pct": self.steal_pct, "sys_busy_pct": self.busy_pct,
                  "sys_procs_running": self.procs_running, "sys_load1": self.load1}
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in values.items() if v is not None}


def between(before: CpuSample, after: CpuSample) -> RunSignals:
    steal = busy = None
    if before.jiffies and after.jiffies and len(before.jiffies) >= 8 and len(after.jiffies) >= 8:
        delta = [b - a for a, b in zip(before.jiffies, after.jiffies, strict=False)]
        total = sum(delta[:8])  # guest time is already inside user
        if total > 0:
            steal = 100 * delta[7] / total
            busy = 100 * (total - delta[3] - delta[4]) / total
    mhz = [v for v in (before.cpu_mhz, after.cpu_mhz) if v is not None]
    return RunSignals(sum(mhz) / len(mhz) if mhz else None, steal, busy, before.procs_running, before.load1)
