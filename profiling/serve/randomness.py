"""Random state in the server: the process-wide generators seeded once, each worker's own draws apart.

Reseeding the process-wide generators before every request (``seed_everything`` per job) races between
worker threads and buys nothing, because of where each engine's randomness lives:

- Piper: inside the ONNX graph (10 ``RandomNormalLike`` nodes in the bundled voice), on ONNX Runtime's own
  per-session generator; Python, NumPy and torch seeds never reach it. ``deterministic=true`` zeroes the
  noise scales, which is what makes Piper's audio repeatable.
- XTTS: sampling (``do_sample``, on by default) draws in transformers' ``generate`` from torch's default
  generator, which is one per device for the whole process; greedy decoding draws nothing. Random weights
  generate a fixed number of tokens, so timing never depends on the draws.
- F5: ``CFM.sample(seed=settings.seed)`` itself calls ``torch.manual_seed`` before drawing its start noise,
  every request: the engine reseeds anyway. The ODE after it is deterministic.
- RVC (conversion): the synthesizer's latent noise and the NSF source's noise use torch's default generator.

None of these takes a generator object, so a per-request seed cannot make a request's audio independent
of what another worker draws at the same time; with one worker, a run of requests repeats from the start.
What is correct and cheap: seed once, before the workers start (``seed_process``). No lab code in the
server draws numbers of its own; code that comes to need them should take a per-worker generator
(``numpy.random.default_rng([seed, worker])``) rather than the global ones.
"""

from __future__ import annotations

import threading

from profiling.run.runner import seed_everything

#: Hold while building random weights from torch's process-wide generator (XTTS and F5 ``random-*``
#: weights, RVC's random parts): replicas loaded in parallel threads would otherwise interleave their
#: draws, and two replicas of "the same seed" would get different weights.
RANDOM_INIT_LOCK = threading.Lock()


def seed_process(seed: int) -> None:
    """Seed Python's, NumPy's and torch's process-wide generators: once, before the workers start."""
    seed_everything(seed)
