"""A load test as a timeline: each request's client view beside what the server did with it.

The client process has one lane per request: the scheduling lag before dispatch, the request from
dispatch to its last byte, TTFB inside it, instants for first playable / first audible audio, every
body read, the end, and refusals. Each server worker is a process; a request it served has a lane
there: the queue wait, the serving span with every stage nested, and each chunk (from the moment the
worker began it, where the server says, to when it was ready). Requests the server refused before any
worker saw them go to a "server: refused" process.

One clock: the client's. Rates are placed by their start (``started_unix``), a request at its dispatch
time within its rate. Server times are seconds since the server received the request, joined by
request id and laid from the client's dispatch: the server's receipt follows the dispatch by the
connection and upload time, so server events are drawn at most that much early (never later than real).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from profiling.trace.events import Lane, TraceBuilder

#: Client statuses that mean the server said no (a refusal, drawn as an instant).
REFUSED_HTTP = (429, 503)


@dataclass(frozen=True)
class LoadRate:
    """One rate (or user count) of a load test as plain data: what the store keeps and ``RateRun`` holds."""

    label: str
    started_unix: float
    rows: Sequence[Mapping[str, Any]]
    server: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN (a stored NULL read by pandas) -> None


def _lane_name(rate: LoadRate, row: Mapping[str, Any]) -> str:
    warm = " warm-up" if row.get("warmup") else ""
    return f"{rate.label} #{row.get('index', '?')}{warm} {str(row.get('request_id', ''))[:12]}"


def add_client(lane: Lane, row: Mapping[str, Any], at: float) -> None:
    """The client's view of one request; ``at`` is its dispatch on the trace's clock (seconds)."""
    request_id = str(row.get("request_id", ""))
    status = str(row.get("status", ""))
    base = {"request_id": request_id, "status": status, "http_status": row.get("http_status"),
            "text_id": row.get("text_id"), "text_chars": row.get("text_chars"), "warmup": bool(row.get("warmup"))}
    lag = _num(row.get("lag_s"))
    if lag is not None and lag > 0:
        lane.add("lag", "client.lag", at - lag, lag, {**base, "lag_s": lag})
    e2e, ttfb = _num(row.get("e2e_s")), _num(row.get("ttfb_s"))
    end = e2e if e2e is not None else ttfb
    if end is not None:
        lane.add("request" if status == "ok" else f"request ({status})", "client.request", at, end,
                 {**base, "e2e_s": e2e, "ttfb_s": ttfb, "audible_ttfa_s": _num(row.get("audible_ttfa_s")),
                  "audio_s": _num(row.get("audio_s")), "rtf": _num(row.get("rtf")),
                  "underruns": row.get("underruns"), "bytes": row.get("bytes"), "error": row.get("error", "")})
    if ttfb is not None:
        lane.add("TTFB", "client.ttfb", at, ttfb, {"ttfb_s": ttfb})
    for name, key in (("first playable", "first_playable_s"), ("first audible", "audible_ttfa_s")):
        value = _num(row.get(key))
        if value is not None:
            lane.instant(name, "client.audio", at + value, {key: value, "request_id": request_id})
    for index, read in enumerate(row.get("reads") or ()):
        offset, size = read[0], read[1]
        lane.instant("read", "client.read", at + float(offset), {"index": index, "bytes": size})
    if e2e is not None:
        lane.instant("end", "client.end", at + e2e, {"e2e_s": e2e, "request_id": request_id})
    http = row.get("http_status")
    if status != "ok" and isinstance(http, int) and http in REFUSED_HTTP:
        lane.instant(f"refused ({http})", "refusal", at + (ttfb or 0.0),
                     {**base, "error": row.get("error", "")}, scope="p")
    elif status != "ok":
        lane.instant(f"failed: {status}", "client.failure", at + (end or 0.0), {**base, "error": row.get("error", "")})


def add_server(lane: Lane, timeline: Mapping[str, Any], at: float) -> None:
    """What the server did with one request; its times are since receipt, laid from ``at`` (the dispatch)."""
    request_id = str(timeline.get("request_id", ""))
    status = str(timeline.get("status", ""))
    queue = _num(timeline.get("queue_wait_s"))
    if queue is not None:
        lane.add("queue wait", "server.queue", at, queue, {"request_id": request_id, "queue_wait_s": queue})
    start, end = _num(timeline.get("start_s")), _num(timeline.get("end_s"))
    if start is not None and end is not None:
        lane.add("serve" if status == "ok" else f"serve ({status})", "server.serve", at + start, end - start, {
            "request_id": request_id, "status": status, "worker": timeline.get("worker"),
            "policy": timeline.get("policy", ""), "chunker": timeline.get("chunker", ""),
            "voice": timeline.get("voice", ""), "sample_rate": timeline.get("sample_rate"),
            "audio_s": timeline.get("audio_s"), "text_chars": timeline.get("text_chars"),
            "error": timeline.get("error", ""), "annotations": dict(timeline.get("annotations") or {})})
    for stage in timeline.get("stages") or ():
        stage_start, duration = _num(stage.get("start_s")), _num(stage.get("duration_s"))
        if stage_start is None or duration is None:
            continue
        path = str(stage.get("path", ""))
        lane.add(path.rsplit("/", 1)[-1], "server.stage", at + stage_start, duration,
                 {"path": path, "depth": stage.get("depth"), "request_id": request_id})
    for chunk in timeline.get("chunks") or ():
        ready = _num(chunk.get("ready_s"))
        if ready is None:
            continue
        index = chunk.get("index")
        args = {"index": index, "request_id": request_id, "ready_s": ready, "audio_s": chunk.get("audio_s"),
                "bytes": chunk.get("bytes"), "chars": chunk.get("chars"), "deadline_s": chunk.get("deadline_s"),
                "slack_s": chunk.get("slack_s")}
        began = _num(chunk.get("start_s"))
        if began is not None and began <= ready:
            lane.add(f"chunk {index}", "server.chunk", at + began, ready - began, args)
        lane.instant(f"chunk {index} ready", "server.chunk_ready", at + ready, args)
    if status == "refused":
        lane.instant(f"refused ({timeline.get('http_status')})", "refusal", at,
                     {"request_id": request_id, "error": timeline.get("error", "")}, scope="p")


def load_trace(rates: Sequence[LoadRate], title: str = "") -> dict[str, Any]:
    """The whole test on the client's clock: a client process, one process per server worker."""
    trace = TraceBuilder(title or "load test")
    client = trace.process("client (load generator)", 0)
    workers: dict[int, int] = {}
    first = min((r.started_unix for r in rates), default=0.0)
    lanes = 0
    joined = 0
    for rate in rates:
        offset = rate.started_unix - first
        rows = sorted(rate.rows, key=lambda r: (_num(r.get("dispatch_s")) or 0.0, r.get("index", 0)))
        for row in rows:
            dispatch = _num(row.get("dispatch_s"))
            if dispatch is None:
                continue
            at = offset + dispatch
            name = _lane_name(rate, row)
            add_client(trace.lane(client, name, lanes), row, at)
            timeline = rate.server.get(str(row.get("request_id", "")))
            if timeline:
                worker = timeline.get("worker")
                worker = worker if isinstance(worker, int) else -1
                if worker not in workers:
                    label = f"server worker {worker}" if worker >= 0 else "server: refused (no worker)"
                    workers[worker] = trace.process(label, 10 + (worker if worker >= 0 else 999))
                add_server(trace.lane(workers[worker], name, lanes), timeline, at)
                joined += 1
            lanes += 1
    trace.other.update(kind="load", requests=lanes, joined_server_timelines=joined,
                       clock="client dispatch; server times since receipt, laid from the dispatch")
    return trace.to_dict()


def stored_rates(requests: Any, rates: Any) -> list[LoadRate]:
    """``LoadStore.requests(test_id)`` and ``LoadStore.rates(test_id)`` (DataFrames) as ``LoadRate``s."""
    started = {int(r["rate_index"]): float(json.loads(r["metrics_json"]).get("started_unix") or 0.0)
               for _, r in rates.iterrows()}
    labels = {int(r["rate_index"]): str(r["label"]) for _, r in rates.iterrows()}
    rows: dict[int, list[dict[str, Any]]] = {i: [] for i in started}
    server: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in started}
    for _, q in requests.iterrows():
        index = int(q["rate_index"])
        row = json.loads(q["row_json"])
        rows.setdefault(index, []).append(row)
        if isinstance(q["server_json"], str) and q["server_json"]:
            server.setdefault(index, {})[str(row.get("request_id"))] = json.loads(q["server_json"])
    return [LoadRate(labels.get(i, str(i)), started.get(i, 0.0), rows[i], server.get(i, {})) for i in sorted(rows)]
