"""Sampled stacks: read py-spy's speedscope JSON, fold it, and draw a flame graph SVG.

The SVG is drawn here (plain rectangles with hover titles) so one py-spy
recording gives both files: py-spy writes one output format per run.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

Stack = tuple[str, ...]

WIDTH = 1200
ROW = 17
FONT_PX = 11
CHAR_PX = 6.6  # rough width of one character at FONT_PX in a sans font


@dataclass(frozen=True)
class Frame:
    name: str
    file: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.file})" if self.file else self.name


def read_speedscope(path: Path) -> Counter[Stack]:
    """Stacks (root first) and their sampled seconds, all threads merged; lines folded per function."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    frames = [Frame(f.get("name", "?"), _short(f.get("file") or ""), int(f.get("line") or 0))
              for f in data["shared"]["frames"]]
    stacks: Counter[Stack] = Counter()
    for profile in data.get("profiles", []):
        if profile.get("type") != "sampled":
            continue
        for sample, weight in zip(profile["samples"], profile["weights"], strict=False):
            stacks[tuple(frames[i].label for i in sample)] += float(weight)
    return stacks


def _short(file: str) -> str:
    from profiling.profilers.artifacts import short_path

    return short_path(file)


def function_totals(stacks: Counter[Stack]) -> list[tuple[str, float, float]]:
    """(frame label, self weight, total weight) per function; recursion counted once per sample."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stack, weight in stacks.items():
        if not stack:
            continue
        own[stack[-1]] += weight
        for label in set(stack):
            total[label] += weight
    return [(label, own[label], total[label]) for label in total]


class _Node:
    __slots__ = ("children", "weight")

    def __init__(self) -> None:
        self.weight = 0.0
        self.children: dict[str, _Node] = {}


def _tree(stacks: Counter[Stack]) -> _Node:
    root = _Node()
    for stack, weight in stacks.items():
        node = root
        node.weight += weight
        for label in stack:
            node = node.children.setdefault(label, _Node())
            node.weight += weight
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def _colour(label: str) -> str:
    digest = hashlib.md5(label.encode(), usedforsecurity=False).digest()
    return f"rgb({205 + digest[0] % 50},{90 + digest[1] % 130},{digest[2] % 60})"


def flamegraph_svg(stacks: Counter[Stack], title: str) -> str:
    """A classic flame graph (root at the bottom, width = share of samples)."""
    root = _tree(stacks)
    rows = _depth(root)
    height = (rows + 2) * ROW
    total = root.weight or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="{FONT_PX}">',
        '<rect width="100%" height="100%" fill="#fdf6e3"/>',
        f'<text x="{WIDTH / 2}" y="{ROW - 4}" text-anchor="middle" font-size="{FONT_PX + 2}">'
        f"{html.escape(title)}</text>",
    ]

    def draw(label: str, node: _Node, x: float, depth: int) -> None:
        width = WIDTH * node.weight / total
        if width < 0.3:
            return
        y = height - (depth + 1) * ROW
        share = 100.0 * node.weight / total
        parts.append(
            f'<g><title>{html.escape(label)}: {node.weight:.3f} s, {share:.1f}%</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{ROW - 1}" fill="{_colour(label)}" rx="2"/>'
        )
        chars = int((width - 6) / CHAR_PX)
        if chars >= 3:
            text = label if len(label) <= chars else label[: chars - 2] + ".."
            parts.append(f'<text x="{x + 3:.2f}" y="{y + ROW - 5}">{html.escape(text)}</text>')
        parts.append("</g>")
        child_x = x
        for child_label, child in sorted(node.children.items()):
            draw(child_label, child, child_x, depth + 1)
            child_x += WIDTH * child.weight / total

    draw("all", root, 0.0, 0)
    parts.append("</svg>")
    return "\n".join(parts)


def _thread_id(profile_name: str) -> int | None:
    """py-spy names profiles 'Thread <native id> "<name>"'."""
    match = re.match(r"Thread (0x[0-9a-fA-F]+|\d+)", profile_name)
    return int(match.group(1), 0) if match else None


def merge_speedscope(paths: list[Path], output: Path, thread_ids: set[int] | None = None) -> Path:
    """One speedscope file from several py-spy recordings, keeping only ``thread_ids`` when given.

    Keeping only the synthesis thread drops the lab's own helper threads (RSS
    sampler, py-spy output reader) that would otherwise crowd the flame graph.
    Falls back to every thread if none of the ids is found.
    """
    frames: list[dict[str, object]] = []
    index_of: dict[tuple[object, ...], int] = {}
    profiles: list[dict[str, object]] = []
    exporter = "py-spy"
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        exporter = data.get("exporter", exporter)
        local = data["shared"]["frames"]
        sampled = [p for p in data.get("profiles", []) if p.get("type") == "sampled"]
        chosen = [p for p in sampled if thread_ids and _thread_id(p.get("name", "")) in thread_ids] or sampled
        for profile in chosen:
            remap: dict[int, int] = {}
            for old in {i for sample in profile["samples"] for i in sample}:
                frame = local[old]
                key = (frame.get("name"), frame.get("file"), frame.get("line"))
                if key not in index_of:
                    index_of[key] = len(frames)
                    frames.append(frame)
                remap[old] = index_of[key]
            profiles.append({**profile, "samples": [[remap[i] for i in s] for s in profile["samples"]]})
    merged = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "profiles": profiles,
        "shared": {"frames": frames},
        "activeProfileIndex": 0 if profiles else None,
        "exporter": exporter,
        "name": "ttsperf py-spy profile",
    }
    output.write_text(json.dumps(merged), encoding="utf-8")
    return output


def below_frame(stacks: Counter[Stack], prefix: str, root: str) -> Counter[Stack]:
    """Only the samples taken under a frame whose label starts with ``prefix``, re-rooted at ``root``.

    Used to keep the synthesis call alone: the recorder's window also covers the
    run's record keeping (storing it), which is the lab's cost, not the engine's.
    Returns ``stacks`` unchanged if no sample has such a frame.
    """
    kept: Counter[Stack] = Counter()
    for stack, weight in stacks.items():
        cut = max((i for i, label in enumerate(stack) if label.startswith(prefix)), default=None)
        if cut is not None:
            kept[(root, *stack[cut + 1:])] += weight
    return kept or stacks
