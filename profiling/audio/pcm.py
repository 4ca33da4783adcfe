"""PCM16 mono WAV framing shared by the server (writes) and the load client (reads): pure."""

from __future__ import annotations

import struct

WAV_HEADER_BYTES = 44
#: RIFF and data sizes of a WAV whose length is not known yet (players read to the end of the stream).
_UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM16 mono header; ``data_bytes`` None = length unknown (streaming)."""
    data = _UNKNOWN_SIZE if data_bytes is None else data_bytes
    riff = _UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1,
        sample_rate, sample_rate * 2, 2, 16, b"data", data,
    )


def parse_wav_header(header: bytes) -> int:
    """The sample rate of a 44-byte PCM16 mono header, or ValueError saying why it is not one."""
    if len(header) < WAV_HEADER_BYTES:
        raise ValueError(f"WAV header is {len(header)} bytes, expected {WAV_HEADER_BYTES}")
    riff, _, wave, fmt, _, audio_format, channels, rate, _, _, bits, data, _ = struct.unpack(
        "<4sI4s4sIHHIIHH4sI", header[:WAV_HEADER_BYTES]
    )
    if (riff, wave, fmt, data) != (b"RIFF", b"WAVE", b"fmt ", b"data"):
        raise ValueError("not a RIFF/WAVE header with a data chunk at byte 36")
    if (audio_format, channels, bits) != (1, 1, 16):
        raise ValueError(f"not PCM16 mono (format {audio_format}, {channels} channels, {bits} bits)")
    if rate <= 0:
        raise ValueError("sample rate 0 in the WAV header")
    return int(rate)
