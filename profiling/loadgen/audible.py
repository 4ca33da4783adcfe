"""Audible onset detectors for streamed PCM16, fed read by read with bounded memory.

Two definitions, because other tools use another one and a figure must say which it is:

- the lab's (``audible_ttfa_s``): the first sample whose magnitude passes 0.02 full scale;
- nari-labs tts_bench's (``audible_ttfa_tb_s``): 20 ms frames every 10 ms; a frame is loud when its
  mean-removed RMS is at least -45 dBFS (full scale 1.0); the onset is the first sample of the first of
  two consecutive loud frames.

Both are timed the same way by the client (the arrival of the read holding the onset sample), so the
two figures differ only by their detector.
"""

from __future__ import annotations

import math

import numpy as np

#: Full-scale fraction above which a sample counts as audible (the lab's silence threshold, JoinSettings).
AUDIBLE_THRESHOLD = 0.02
TB_FRAME_S = 0.020
TB_HOP_S = 0.010
TB_THRESHOLD_DBFS = -45.0
TB_CONSECUTIVE = 2


def first_loud_sample(samples: np.ndarray) -> int | None:
    """The lab's rule on int16 samples: index of the first sample above 0.02 full scale, or None."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > int(AUDIBLE_THRESHOLD * 32767))
    return int(loud[0]) if loud.size else None


class TbOnsetDetector:
    """tts_bench's onset rule, incrementally: keeps at most one frame plus the newest read's samples."""

    def __init__(self, sample_rate: int) -> None:
        self.frame = max(1, round(TB_FRAME_S * sample_rate))
        self.hop = max(1, round(TB_HOP_S * sample_rate))
        self.threshold = 10 ** (TB_THRESHOLD_DBFS / 20)
        self.pending = np.zeros(0, dtype=np.float64)  # samples from ``pending_start`` on
        self.pending_start = 0  # absolute index of pending[0]; always a frame start
        self.run_start: int | None = None  # first frame of the current run of loud frames
        self.run_length = 0
        self.onset: int | None = None

    def feed(self, samples: np.ndarray) -> int | None:
        """Add int16 samples; returns the onset's absolute sample index once found (then ignores the rest)."""
        if self.onset is not None:
            return self.onset
        self.pending = np.concatenate([self.pending, samples.astype(np.float64) / 32768.0])
        offset = 0
        while offset + self.frame <= len(self.pending):
            frame = self.pending[offset : offset + self.frame]
            rms = math.sqrt(float(np.mean((frame - frame.mean()) ** 2)))
            if rms >= self.threshold:
                if self.run_length == 0:
                    self.run_start = self.pending_start + offset
                self.run_length += 1
                if self.run_length >= TB_CONSECUTIVE:
                    self.onset = self.run_start
                    self.pending = np.zeros(0)
                    return self.onset
            else:
                self.run_length = 0
            offset += self.hop
        self.pending = self.pending[offset:]
        self.pending_start += offset
        return None


def tb_onset(samples: np.ndarray, sample_rate: int) -> int | None:
    """tts_bench's onset over a whole int16 signal (the detector fed at once)."""
    return TbOnsetDetector(sample_rate).feed(np.asarray(samples))
