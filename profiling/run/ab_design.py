"""The order an A/B runs its sides in, chosen by what the two sides need loaded.

- ``one-model``: the sides differ only in per-call knobs (equal ``load_key``): ONE loaded model, the
  per-call settings alternate A B | B A | A B ...; nothing is evicted between runs, so nothing to confound.
- ``blocks``: the sides need two loaded models (load-time knobs, engines, precisions). Alternating two
  sessions run by run makes every run pay for the other session having evicted its weights from the
  caches (measured here: ~20 % on Piper), which buries small differences. Instead each side runs a
  segment, A A | B B B | A A A | B B B ..., whose first run (``after_switch``) is kept apart; the last
  run of a segment pairs with the first after-repeat run of the next (one run between them). Pairs
  alternate AB, BA, so a slow drift cancels; the switch penalty itself is measured from the kept-apart
  runs against the run after them. Two loaded copies of one model can differ by a per cent or two (where
  their weights and buffers landed in memory), a difference no number of pairs averages away: so every
  ``reload_every`` segments both models are reloaded, the other side loaded first, starting a new epoch
  whose pairs share no run with the last; the interval then also spans the spread between epochs.
- ``alternate``: the design before (two loaded models, A B B A ... paired run by run), kept for
  comparison: its pairs mix after-switch and after-repeat runs.

A slot is one run to make; slots come from an endless generator and the runner stops after a pair closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

#: Role of a measured run: in a pair, or the first run after a switch of loaded model (blocks design).
PAIRED = "paired"
AFTER_SWITCH = "after_switch"


class AbDesign(str, Enum):
    AUTO = "auto"
    ONE_MODEL = "one-model"
    BLOCKS = "blocks"
    ALTERNATE = "alternate"


#: Blocks design: segments per epoch (both models reloaded between epochs); 0 keeps one copy each throughout.
DEFAULT_RELOAD_EVERY = 4


@dataclass(frozen=True)
class Slot:
    side: str  # "A" or "B"
    pair: int  # the pair this run belongs to; -1 for an after-switch run of the blocks design
    segment: int  # consecutive runs of one side (blocks design); the pair index otherwise
    #: Which side of this run's pair ran first ("AB" or "BA").
    order: str = "AB"
    #: Loaded copies of the models in use (blocks design: a reload starts the next epoch).
    epoch: int = 0

    @property
    def role(self) -> str:
        return AFTER_SWITCH if self.pair < 0 else PAIRED


def alternating_slots() -> Iterator[Slot]:
    """A B | B A | A B ...: each pair's order alternates (one-model and alternate designs)."""
    pair = 0
    while True:
        order = "AB" if pair % 2 == 0 else "BA"
        for side in order:
            yield Slot(side, pair, pair, order)
        pair += 1


def block_slots(reload_every: int = 0) -> Iterator[Slot]:
    """Segments A, B, A, B ...: [after-switch, closes the last pair, opens the next].

    An epoch's first segment has nothing to close and its last opens nothing, so no pair spans a reload;
    epochs start with A and B in turn (so pair orders stay balanced). ``reload_every`` 0: one endless epoch.
    """
    pair, segment, epoch = 0, 0, 0
    while True:
        first = "AB"[epoch % 2]
        k = 0
        while not reload_every or k < reload_every:
            side = first if k % 2 == 0 else "AB".replace(first, "")
            other = "AB".replace(side, "")
            yield Slot(side, -1, segment, epoch=epoch)
            if k > 0:
                yield Slot(side, pair - 1, segment, other + side, epoch)
            if not reload_every or k < reload_every - 1:
                yield Slot(side, pair, segment, side + other, epoch)
                pair += 1
            segment, k = segment + 1, k + 1
        epoch += 1


def slots(design: AbDesign, reload_every: int = 0) -> Iterator[Slot]:
    return block_slots(reload_every) if design is AbDesign.BLOCKS else alternating_slots()
