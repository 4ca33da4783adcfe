"""The per-stage roofline table: achieved rates against the ceilings, utilisation and a verdict.

Bytes for the rate and the intensity are ``weight_bytes + attention_bytes`` (what a
stage must read at least once: the weights, and the KV cache in decode). That is a lower
bound on traffic; ``io_bytes`` (every operator's inputs and outputs, no cache reuse) is
the upper bound and is shown beside it. Stage times are medians over the timed runs.

Verdict: compute-bound when the FLOP rate reaches ``BOUND_THRESHOLD`` of the measured
matmul peak (and beats the bandwidth utilisation); memory-bound when the byte rate
reaches that share of the measured copy bandwidth; otherwise neither: the stage is bound
by overhead (Python, operator dispatch and, on CUDA, kernel launches; ops per step shown).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pandas as pd

from profiling.core.records import RunRecord
from profiling.roofline.ceilings import Ceilings
from profiling.roofline.counting import CountingResult, StageCounts

#: Share of a ceiling from which a stage counts as bound by it.
BOUND_THRESHOLD = 0.4
#: Stages shorter than this are left out (timer jitter dominates).
MIN_STAGE_S = 0.0005
WHOLE_RUN = "(whole synthesis)"


@dataclass(frozen=True)
class StageRoofline:
    stage: str
    time_s: float
    calls: int
    steps: int
    flops: int
    bytes: int
    io_bytes: int
    ops: int
    peak_flops: float
    peak_bandwidth: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else float("nan")

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.time_s

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.time_s

    @property
    def compute_utilisation(self) -> float:
        return self.flops_per_s / self.peak_flops

    @property
    def memory_utilisation(self) -> float:
        return self.bytes_per_s / self.peak_bandwidth

    @property
    def ridge(self) -> float:
        return self.peak_flops / self.peak_bandwidth

    @property
    def verdict(self) -> str:
        compute, memory = self.compute_utilisation, self.memory_utilisation
        if compute >= BOUND_THRESHOLD and compute >= memory:
            return "compute-bound"
        if memory >= BOUND_THRESHOLD:
            return "memory-bound"
        return "neither: overhead-bound (Python / dispatch / launch)"


def median_stage_times(records: list[RunRecord]) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    for record in records:
        for stage in record.stages:
            times.setdefault(stage.name, []).append(stage.inclusive_s)
        times.setdefault(WHOLE_RUN, []).append(record.synth_s)
    return {name: statistics.median(values) for name, values in times.items()}


def stage_rooflines(
    counts: CountingResult, records: list[RunRecord], ceilings: Ceilings, precision: str
) -> list[StageRoofline]:
    times = median_stage_times(records)
    peak = ceilings.peak_flops(precision)
    entries: list[tuple[str, StageCounts]] = [(WHOLE_RUN, counts.totals), *counts.stages.items()]
    rows = []
    for name, stage in entries:
        time_s = times.get(name, 0.0)
        moved = stage.weight_bytes + stage.attention_bytes
        if time_s < MIN_STAGE_S or (stage.flops == 0 and moved == 0):
            continue
        rows.append(StageRoofline(
            stage=name, time_s=time_s, calls=stage.calls, steps=stage.steps, flops=stage.flops, bytes=moved,
            io_bytes=stage.io_bytes, ops=stage.ops, peak_flops=peak, peak_bandwidth=ceilings.bandwidth,
        ))
    return rows


def roofline_frame(rows: list[StageRoofline], ceilings: Ceilings, precision: str) -> pd.DataFrame:
    sheet_flops = ceilings.datasheet_flops.get(precision)
    sheet_bw = ceilings.datasheet_bandwidth
    records = []
    for row in rows:
        per_step = row.steps or row.calls
        record = {
            "stage": row.stage, "time_s": row.time_s, "calls": row.calls, "steps": row.steps,
            "gflop": row.flops / 1e9, "mb_read": row.bytes / 1e6, "mb_io_upper": row.io_bytes / 1e6,
            "intensity_flop_per_byte": row.intensity, "gflop_per_s": row.flops_per_s / 1e9,
            "gb_per_s": row.bytes_per_s / 1e9, "compute_util": row.compute_utilisation,
            "memory_util": row.memory_utilisation, "verdict": row.verdict,
            "ops_per_step": row.ops / per_step if per_step else float("nan"),
        }
        if sheet_flops and sheet_bw:
            record["compute_util_datasheet"] = row.flops_per_s / sheet_flops
            record["memory_util_datasheet"] = row.bytes_per_s / sheet_bw
        records.append(record)
    return pd.DataFrame(records)


def ceilings_frame(ceilings: Ceilings) -> pd.DataFrame:
    rows = [{"ceiling": f"matmul {p}", "measured": value / 1e9, "unit": "GFLOP/s",
             "datasheet": ceilings.datasheet_flops.get(p, float("nan")) / 1e9}
            for p, value in ceilings.flops.items()]
    rows.append({"ceiling": "copy bandwidth", "measured": ceilings.bandwidth / 1e9, "unit": "GB/s",
                 "datasheet": (ceilings.datasheet_bandwidth or float("nan")) / 1e9})
    frame = pd.DataFrame(rows)
    frame["device"] = ceilings.device_name
    frame["threads"] = ceilings.threads
    return frame
