"""Streaming sample-rate conversion (numpy only): chunk by chunk, continuous across chunk joins.

A polyphase windowed-sinc filter: the rate changes by ``up/down`` (22050 -> 24000 is 160/147), each
output sample is ``taps`` input samples weighted by one of ``up`` filter phases. The filter's state (the
last ``taps`` input samples) travels from one chunk to the next, so resampling a stream chunk by chunk
gives exactly the samples resampling it whole would: no clicks at joins, which independent per-chunk
resampling would put at every chunk boundary. The filter is centred (linear phase), so the output
lags the input by half a filter; ``flush`` at the end of the stream gives the rest.

Numpy only because the base install (the Space) has neither scipy nor soxr.
"""

from __future__ import annotations

import math

import numpy as np

#: Input samples per output sample's filter: 32 keeps aliasing under about -80 dB at the Kaiser beta below.
DEFAULT_TAPS = 32
_KAISER_BETA = 8.6
#: Cutoff as a share of the lower Nyquist frequency (the transition band sits just below it).
_ROLLOFF = 0.94


class StreamResampler:
    """Resamples a mono float stream from ``source_rate`` to ``target_rate`` in pieces."""

    def __init__(self, source_rate: int, target_rate: int, taps: int = DEFAULT_TAPS) -> None:
        if source_rate <= 0 or target_rate <= 0:
            raise ValueError(f"rates must be positive, got {source_rate} -> {target_rate}")
        divisor = math.gcd(source_rate, target_rate)
        self.source_rate, self.target_rate = source_rate, target_rate
        self.up, self.down = target_rate // divisor, source_rate // divisor
        self.taps = taps
        length = taps * self.up
        cutoff = _ROLLOFF * 0.5 / max(self.up, self.down)  # cycles per sample of the upsampled signal
        self._delay = (length - 1) // 2  # in upsampled samples: the filter's centre, a whole sample
        n = np.arange(length) - self._delay
        prototype = np.sinc(2 * cutoff * n) * np.kaiser(length, _KAISER_BETA)
        # phases[k, p] = prototype[k * up + p]; each phase normalised to unit gain at DC.
        phases = prototype.reshape(taps, self.up)
        self._phases = (phases / phases.sum(axis=0, keepdims=True)).T.copy()  # (up, taps)
        self._block = self._block_matrix()
        # Input history: absolute index of _buffer[0] (starts before the signal, as zeros).
        self._buffer = np.zeros(taps, dtype=np.float64)
        self._buffer_start = -taps
        self._received = 0
        self._produced = 0

    @property
    def identity(self) -> bool:
        return self.up == self.down

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Every output sample the input so far determines (float32)."""
        if self.identity:
            return samples.astype(np.float32, copy=False)
        if samples.size:
            self._buffer = np.concatenate([self._buffer, samples.astype(np.float64, copy=False)])
            self._received += int(samples.size)
        # Output n needs input up to (n * down + delay) // up: stop before what has not arrived.
        last = (self._received * self.up - 1 - self._delay) // self.down
        return self._emit(last + 1)

    def flush(self) -> np.ndarray:
        """The stream's last samples: the output a whole-stream resampler gives past the last ``process``."""
        if self.identity:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._received * self.up // self.down)  # ceil: the output's whole length
        self._buffer = np.concatenate([self._buffer, np.zeros(self.taps, dtype=np.float64)])
        return self._emit(total)

    def _block_matrix(self) -> np.ndarray:
        """Outputs come in blocks of ``up`` that each advance the input by ``down``: one block is a window
        of the input times this (window, up) matrix, so whole blocks cost one matrix product."""
        j = np.arange(self.up)
        offsets = (j * self.down + self._delay) // self.up  # each output's newest input, from the block's
        phase = (j * self.down + self._delay) % self.up
        first = offsets[0] - self.taps + 1
        matrix = np.zeros((offsets[-1] - first + 1, self.up))
        for k in range(self.taps):
            matrix[offsets - k - first, j] = self._phases[phase, k]
        return matrix

    def _gather(self, start: int, end: int) -> np.ndarray:
        """Outputs ``start`` to ``end`` one by one (the partial blocks at either end)."""
        n = np.arange(start, end, dtype=np.int64)
        position = n * self.down + self._delay
        base, phase = position // self.up, position % self.up
        index = base[:, None] - np.arange(self.taps)[None, :] - self._buffer_start
        return np.einsum("nk,nk->n", self._buffer[index], self._phases[phase])

    def _blocks(self, start: int, end: int) -> np.ndarray:
        """Outputs ``start`` to ``end``, both multiples of ``up``."""
        count = (end - start) // self.up
        if count <= 0:
            return np.zeros(0)
        first = (start * self.down + self._delay) // self.up - self.taps + 1 - self._buffer_start
        width = self._block.shape[0]
        windows = np.lib.stride_tricks.sliding_window_view(self._buffer[first:], width)[:: self.down][:count]
        return (np.ascontiguousarray(windows) @ self._block).reshape(-1)  # BLAS wants a contiguous operand

    def _emit(self, end: int) -> np.ndarray:
        if end <= self._produced:
            return np.zeros(0, dtype=np.float32)
        start = self._produced
        head_end = min(end, -(-start // self.up) * self.up)
        tail_start = max(head_end, end // self.up * self.up)
        out = np.concatenate([self._gather(start, head_end), self._blocks(head_end, tail_start),
                              self._gather(tail_start, end)])
        self._produced = end
        # Keep only the history the next output needs.
        next_base = (end * self.down + self._delay) // self.up
        keep_from = next_base - self.taps + 1 - self._buffer_start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._buffer_start += keep_from
        return np.clip(out, -1.0, 1.0).astype(np.float32)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """The whole signal at ``target_rate`` (the same samples a chunked StreamResampler gives)."""
    resampler = StreamResampler(source_rate, target_rate)
    return np.concatenate([resampler.process(samples), resampler.flush()])
