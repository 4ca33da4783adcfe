"""The Ray executor: one ``EngineWorker`` actor per unit (loaded model), results taken with ``ray.wait``.

The only module that imports Ray (the optional ``cluster`` extra); ``profiling.sweeps.execute`` imports
it only when ``--executor ray`` is chosen. The driver keeps the store: actors run ``perform`` on their
own ``EnginePool`` and return records; ``deliver`` writes them with the same resume keys as the local
executor, so either executor can finish what the other started.

- Each actor asks Ray for what its unit needs: ``num_gpus=1`` for a CUDA device (two units never share
  a GPU), ``cpus_per_worker`` CPUs otherwise. A request no node can satisfy is refused before anything
  is dispatched (Ray would otherwise wait for ever).
- At most ``workers`` actors are alive; blocks go out in schedule order; an actor whose unit has no
  more blocks is retired to make room. Each actor has at most ``IN_FLIGHT`` runs queued, so cancel
  (which stops dispatch) takes effect within a run or two.
- A dead actor (killed worker, lost node) is replaced and its unfinished runs re-sent; a run whose key
  is already stored is dropped on arrival (``deliver`` returns False), so nothing is run twice into the
  store. After ``MAX_RESTARTS`` deaths of one unit the sweep stops with one line; stored runs stay.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, WorkerCrashedError

from engines.errors import InputError
from profiling.run.runner import EnginePool
from profiling.sweeps.scheduler import Block
from profiling.sweeps.spec import SweepSpec
from profiling.sweeps.work import Deliver, ExecutorChoice, RunResult, RunTask, perform, tasks_for

IN_FLIGHT = 2
MAX_RESTARTS = 3
WAIT_S = 1.0
#: No result and nothing started for this long: stop rather than hang (a cluster that lost its nodes).
STALL_S = 600.0


class EngineWorker:
    """Runs scheduled runs on its own engine pool; never touches the store."""

    def __init__(self) -> None:
        self.pool = EnginePool()
        self.placement = _placement()

    def run(self, task: RunTask) -> RunResult:
        return perform(self.pool, task, self.placement)

    def pid(self) -> int:
        return os.getpid()


def _placement() -> dict[str, str]:
    context = ray.get_runtime_context()
    gpus = [str(g) for g in ray.get_gpu_ids()]
    placement = {
        "node": socket.gethostname(), "node_ip": ray.util.get_node_ip_address(), "worker": context.get_worker_id()[:12],
        "actor": (context.get_actor_id() or "")[:12], "pid": str(os.getpid()),
    }
    if gpus:
        placement["gpu"] = ",".join(gpus)
        placement["gpu_uuid"] = ",".join(_gpu_uuids().get(g, "") for g in gpus)
    return placement


def _gpu_uuids() -> dict[str, str]:
    """Physical GPU index -> UUID from nvidia-smi (empty when it is not there)."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {i.strip(): u.strip() for i, _, u in (line.partition(",") for line in out.splitlines())}


def resources_for(block: Block, choice: ExecutorChoice) -> dict[str, float]:
    if block.settings.device_kind == "cuda":
        return {"CPU": 1.0, "GPU": 1.0}
    return {"CPU": choice.cpus_per_worker}


def connect(choice: ExecutorChoice) -> bool:
    """Connect (or start a local instance); True when this call started Ray and must shut it down."""
    if ray.is_initialized():
        return False  # the caller's Ray (a notebook, a test): use it and leave it running
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if choice.address is None:
        cpus = max(2, math.ceil(choice.workers * choice.cpus_per_worker))
        ray.init(num_cpus=cpus, **quiet)
        return True
    try:
        ray.init(address=choice.address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        raise InputError(f"cannot connect to Ray at {choice.address}: {str(error).splitlines()[0]}") from None
    return True


def check_resources(blocks: Sequence[Block], choice: ExecutorChoice) -> None:
    """Refuse a request no alive node can satisfy (Ray would queue it for ever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for block in blocks:
        need = resources_for(block, choice)
        if not any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
            have = "; ".join(", ".join(f"{k} {node.get(k, 0):g}" for k in ("CPU", "GPU")) for node in nodes) or "none"
            wanted = ", ".join(f"{k} {v:g}" for k, v in need.items())
            raise InputError(f"no Ray node can give a {block.settings.engine} {block.settings.device} worker"
                             f" {wanted} (nodes: {have})")


@dataclass
class _Actor:
    unit: str
    handle: Any
    resources: dict[str, float]
    queue: deque[RunTask] = field(default_factory=deque)
    in_flight: dict[Any, RunTask] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        return not self.queue and not self.in_flight


def run_ray(
    spec: SweepSpec, blocks: Sequence[Block], deliver: Deliver, choice: ExecutorChoice,
    cancel: threading.Event | None,
) -> str:
    """Run the blocks on Ray actors; returns "" when done (or cancelled), else why it stopped."""
    started_here = connect(choice)
    try:
        if not blocks:
            return ""
        check_resources(blocks, choice)
        return _dispatch(spec, blocks, deliver, choice, cancel)
    finally:
        if started_here:
            ray.shutdown()


def _dispatch(
    spec: SweepSpec, blocks: Sequence[Block], deliver: Deliver, choice: ExecutorChoice,
    cancel: threading.Event | None,
) -> str:
    remote = ray.remote(EngineWorker)
    pending = deque(blocks)
    actors: dict[str, _Actor] = {}
    deaths: dict[str, int] = {}
    last_progress = time.monotonic()

    def start(unit: str, block: Block) -> _Actor:
        need = resources_for(block, choice)
        handle = remote.options(num_cpus=need.get("CPU", 0.0), num_gpus=need.get("GPU", 0.0),
                                max_restarts=0).remote()
        actors[unit] = _Actor(unit, handle, need)
        return actors[unit]

    def retire(actor: _Actor) -> None:
        actors.pop(actor.unit, None)
        ray.kill(actor.handle, no_restart=True)

    try:
        while True:
            stopping = cancel is not None and cancel.is_set()
            while pending and not stopping:  # hand out blocks in schedule order
                block = pending[0]
                actor = actors.get(block.unit)
                if actor is None:
                    if len(actors) >= choice.workers:
                        idle = next((a for a in actors.values() if a.idle), None)
                        if idle is None:
                            break  # every worker is busy: wait for results
                        retire(idle)
                    actor = start(block.unit, block)
                actor.queue.extend(tasks_for(spec, block))
                pending.popleft()
            if not stopping:
                for actor in actors.values():
                    while actor.queue and len(actor.in_flight) < IN_FLIGHT:
                        task = actor.queue.popleft()
                        actor.in_flight[actor.handle.run.remote(task)] = task
            owners = {ref: actor for actor in actors.values() for ref in actor.in_flight}
            if not owners:
                if stopping or not pending:
                    return ""
                continue
            ready, _ = ray.wait(list(owners), num_returns=1, timeout=WAIT_S)
            if not ready:
                if time.monotonic() - last_progress > STALL_S:
                    return f"no Ray result for {STALL_S:.0f} s: stopped (stored runs are kept; run again to resume)"
                continue
            last_progress = time.monotonic()
            for ref in ready:
                actor = owners[ref]
                task = actor.in_flight.pop(ref, None)
                if task is None:
                    continue
                try:
                    result = ray.get(ref, timeout=60)
                except (RayActorError, WorkerCrashedError):
                    # The worker died mid-unit: re-send what it had not returned, to a fresh actor.
                    deaths[actor.unit] = deaths.get(actor.unit, 0) + 1
                    lost = [task, *actor.in_flight.values(), *actor.queue]
                    actors.pop(actor.unit, None)
                    if deaths[actor.unit] > MAX_RESTARTS:
                        return (f"the Ray worker for {task.run.config.label} died {deaths[actor.unit]} times:"
                                " stopped (stored runs are kept; run again to resume)")
                    fresh = start(actor.unit, Block(actor.unit, 0, task.run.config.settings, ()))
                    fresh.queue.extend(lost)
                    break  # the other refs of the dead actor are no longer tracked
                except GetTimeoutError:
                    actor.in_flight[ref] = task
                    continue
                except RayError as error:
                    return f"a Ray worker failed: {str(error).splitlines()[0]} (stored runs are kept)"
                deliver(result)
    finally:
        for actor in list(actors.values()):
            ray.kill(actor.handle, no_restart=True)
