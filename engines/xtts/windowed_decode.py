"""Streaming HiFi-GAN decode: coqui's re-decode-everything path and the lab's windowed path.

coqui's ``inference_stream`` runs HiFi-GAN over *all* latents generated so far
at every chunk and keeps only the new part, so decoder work per chunk grows
with the length and total work with its square. The windowed decoder runs
HiFi-GAN only over the new frames plus ``context_frames`` of left context.
It works in the decoder's frame domain (after the latent upsampling), where
HiFi-GAN maps one frame to exactly ``hop`` samples, so window output lands on
exact global sample positions. Both paths hold back ``overlap`` samples and
cross-fade them into the next chunk the way coqui's ``handle_chunks`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

STREAM_DECODERS: tuple[str, ...] = ("coqui", "windowed")


class StreamDecoder(Protocol):
    def push(self, latents: torch.Tensor, is_final: bool) -> torch.Tensor:
        """All latents so far ``[1, T, d]`` in; the next audio chunk (1-D) out."""
        ...


def latents_to_frames(decoder: HifiDecoder, latents: torch.Tensor) -> torch.Tensor:
    """The first half of ``HifiDecoder.forward``: GPT latents to HiFi-GAN input frames ``[1, d, F]``."""
    import torch.nn.functional as F

    z = F.interpolate(
        latents.transpose(1, 2),
        scale_factor=[decoder.ar_mel_length_compression / decoder.output_hop_length],
        mode="linear",
    ).squeeze(1)
    if decoder.output_sample_rate != decoder.input_sample_rate:
        z = F.interpolate(
            z, scale_factor=[decoder.output_sample_rate / decoder.input_sample_rate], mode="linear"
        ).squeeze(0)
    return z


def hop_length(decoder: HifiDecoder) -> int:
    """Output samples per HiFi-GAN input frame (product of the upsample rates)."""
    import math

    return math.prod(up.stride[0] for up in decoder.waveform_decoder.ups)


class CoquiStreamDecoder:
    """coqui-tts ``inference_stream``: full re-decode each chunk + ``Xtts.handle_chunks``."""

    def __init__(self, model: object, speaker_embedding: torch.Tensor, overlap: int) -> None:
        self._model = model
        self._g = speaker_embedding
        self._overlap = overlap
        self._prev: torch.Tensor | None = None
        self._tail: torch.Tensor | None = None
        self.frames_decoded = 0  # total HiFi-GAN input frames run, for cost comparisons

    def push(self, latents: torch.Tensor, is_final: bool) -> torch.Tensor:
        decoder = self._model.hifigan_decoder  # type: ignore[attr-defined]
        self.frames_decoded += latents_to_frames(decoder, latents).shape[-1]
        wav_gen = decoder(latents, g=self._g)
        chunk, self._prev, self._tail = self._model.handle_chunks(  # type: ignore[attr-defined]
            wav_gen.squeeze(), self._prev, self._tail, self._overlap, is_final=is_final
        )
        return chunk


class WindowedStreamDecoder:
    """HiFi-GAN over the new frames plus a fixed left context: linear total cost."""

    def __init__(
        self, decoder: HifiDecoder, speaker_embedding: torch.Tensor, overlap: int, context_frames: int
    ) -> None:
        self._decoder = decoder
        self._g = speaker_embedding
        self._overlap = overlap
        self._context = context_frames
        self._hop = hop_length(decoder)
        self._emitted = 0  # global samples handed out so far
        self._tail: torch.Tensor | None = None  # held-back samples [emitted, emitted + len)
        self.frames_decoded = 0  # total HiFi-GAN input frames run, for cost comparisons

    def push(self, latents: torch.Tensor, is_final: bool) -> torch.Tensor:
        import torch

        frames = latents_to_frames(self._decoder, latents)
        total_frames = frames.shape[-1]
        first_frame = max(0, self._emitted // self._hop - self._context)
        window = self._decoder.waveform_decoder(frames[..., first_frame:], g=self._g).reshape(-1)
        self.frames_decoded += total_frames - first_frame
        origin = first_frame * self._hop  # global position of window[0]
        end = total_frames * self._hop if is_final else max(self._emitted, total_frames * self._hop - self._overlap)
        chunk = window[self._emitted - origin : end - origin].clone()
        if self._tail is not None and len(self._tail) > 0:
            n = min(len(self._tail), len(chunk))
            fade_in = torch.linspace(0.0, 1.0, n, device=chunk.device, dtype=chunk.dtype)
            chunk[:n] = self._tail[:n] * (1.0 - fade_in) + chunk[:n] * fade_in
        self._tail = None if is_final else window[end - origin :].clone()
        self._emitted = end
        return chunk
