"""The order an A/B runs its sides in, chosen by what the two sides need loaded.

- ``one-model``: the sides differ only in per-call knobs (equal ``load_key``): ONE loaded model, the
  per-call settings alternate A B | B A | A B ...; nothing is evicted between runs, so nothing to confound.
- ``blocks``: the sides need two loaded models (load-time knobs, engines, precisions). Alternating two
  sessions run by run makes every run pay for the other session having evicted its weights from the
  caches (measured here: ~20 % on Piper), which buries small differences. Instead each side runs a
  segment, A A | B B B | A A A | B B B ..., whose first run (``after_switch``) is kept apart; the last
  run of a segment pairs with the first after-repeat run of the next (one run between them). Pairs
  alternate AB, BA, so a slow drift cancels; the switch penalty itself is measured from the kept-apart
  runs against the run after them.
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


@dataclass(frozen=True)
class Slot:
    side: str  # "A" or "B"
    pair: int  # the pair this run belongs to; -1 for an after-switch run of the blocks design
    segment: int  # consecutive runs of one side (blocks design); the pair index otherwise

    @property
    def role(self) -> str:
        return AFTER_SWITCH if self.pair < 0 else PAIRED

    @property
    def order(self) -> str:
        """Which side of this run's pair ran first."""
        return "AB" if self.pair % 2 == 0 else "BA"


def alternating_slots() -> Iterator[Slot]:
    """A B | B A | A B ...: each pair's order alternates (one-model and alternate designs)."""
    pair = 0
    while True:
        for side in ("A", "B") if pair % 2 == 0 else ("B", "A"):
            yield Slot(side, pair, pair)
        pair += 1


def block_slots() -> Iterator[Slot]:
    """Segments A, B, A, B ...: [after-switch, closes pair s-1, opens pair s]; segment 0 has nothing to close."""
    segment = 0
    while True:
        side = "AB"[segment % 2]
        yield Slot(side, -1, segment)
        if segment > 0:
            yield Slot(side, segment - 1, segment)
        yield Slot(side, segment, segment)
        segment += 1


def slots(design: AbDesign) -> Iterator[Slot]:
    return block_slots() if design is AbDesign.BLOCKS else alternating_slots()
