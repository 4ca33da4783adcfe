"""XTTS inference split into timed stages, following coqui-tts 0.28 ``Xtts`` step by step.

``synthesize`` mirrors ``Xtts.inference()`` (HF ``generate`` for the codes, a
second GPT pass for the latents, HiFi-GAN) and ``stream`` mirrors
``Xtts.inference_stream()`` (the streaming generator's hidden states as
latents). Doing the steps here rather than calling those methods is what lets
each stage be timed, the GPT prefill be told apart from per-token decode, the
conditioning be cached, and half-precision inputs be cast at the boundaries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.errors import InputError
from engines.hooks import StageHook
from engines.xtts.capabilities import GenerationKnobs
from engines.xtts.precision import PrecisionPlan
from engines.xtts.voice_cache import ConditioningSettings, VoiceProfile
from engines.xtts.windowed_decode import CoquiStreamDecoder, StreamDecoder, WindowedStreamDecoder

if TYPE_CHECKING:
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

GPT_SAMPLE_RATE = 22050
SPEAKER_ENCODER_RATE = 16000
MIN_REFERENCE_S = 0.33  # coqui's MIN_AUDIO_SECONDS for a GPT conditioning chunk


@dataclass(frozen=True)
class GenerationSettings(GenerationKnobs):
    """The generation knobs as one call runs them: ``max_audio_tokens`` is the resolved cap (never 0)
    and the fields below are what the engine derives from the loaded weights."""

    fixed_length: bool = False  # stop token suppressed until the cap: comparable runs on random weights
    #: random weights with max_audio_tokens 0: each sentence gets the tokens trained XTTS would
    #: generate for it (length_model.py) instead of a fixed count
    length_model: bool = False

    @classmethod
    def of(cls, knobs: GenerationKnobs, **derived: Any) -> GenerationSettings:
        """Every generation knob copied from ``knobs`` (any GenerationKnobs, e.g. XttsKnobs), ``derived`` on top."""
        copied = {item.name: getattr(knobs, item.name) for item in fields(GenerationKnobs)}
        return cls(**{**copied, **derived})


@dataclass(frozen=True)
class Sentence:
    """One sentence as the GPT sees it: its text (for the length model) and its token ids."""

    text: str
    tokens: torch.Tensor  # (1, n) int


@dataclass(frozen=True)
class StreamSettings:
    chunk_size: int  # GPT tokens per chunk (coqui's stream_chunk_size)
    overlap: int  # samples cross-faded between chunks (coqui's overlap_wav_len)
    decoder: str  # coqui | windowed
    context_frames: int  # windowed decoder: HiFi-GAN frames of left context


@dataclass
class XttsRuntime:
    """A loaded model and the facts the pipeline needs about it."""

    model: Xtts
    config: XttsConfig
    plan: PrecisionPlan
    device: torch.device
    identity: str  # what makes conditioning outputs equal: weights + device + precision
    max_gen_tokens: int  # the model's own generation limit

    @property
    def compute_dtype(self) -> torch.dtype:
        return next(self.model.gpt.conditioning_encoder.parameters()).dtype

    @property
    def decoder_dtype(self) -> torch.dtype:
        return next(self.model.hifigan_decoder.waveform_decoder.parameters()).dtype


def dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def read_reference(path: Path, hook: StageHook) -> tuple[torch.Tensor, bytes]:
    """Mono float32 ``[1, n]`` at 22.05 kHz, clipped like coqui's ``load_audio``; plus the file bytes.

    soundfile reads the file (coqui's torchaudio.load needs torchcodec and ffmpeg);
    resampling is the same torchaudio.functional.resample coqui uses.
    """
    import soundfile
    import torch
    import torchaudio

    with hook.stage("reference_audio_load"):
        try:
            raw = path.read_bytes()
            import io

            data, rate = soundfile.read(io.BytesIO(raw), dtype="float32", always_2d=True)
        except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
            raise InputError(f"cannot read reference audio {path}: {error}") from None
        audio = torch.from_numpy(np.ascontiguousarray(data.T))
        if audio.shape[0] != 1:
            audio = audio.mean(dim=0, keepdim=True)
        if rate != GPT_SAMPLE_RATE:
            audio = torchaudio.functional.resample(audio, rate, GPT_SAMPLE_RATE)
        audio.clip_(-1, 1)
        if audio.shape[1] < GPT_SAMPLE_RATE * MIN_REFERENCE_S:
            raise InputError(
                f"reference audio {path.name} is {audio.shape[1] / GPT_SAMPLE_RATE:.2f} s: "
                f"XTTS needs at least {MIN_REFERENCE_S} s (3-10 s recommended)"
            )
    return audio, raw


def condition(
    runtime: XttsRuntime, audio: torch.Tensor, settings: ConditioningSettings, hook: StageHook
) -> VoiceProfile:
    """``Xtts.get_conditioning_latents`` for one reference, timed in two sub-stages."""
    import torch
    import torchaudio
    from TTS.tts.models.xtts import wav_to_mel_cloning

    model, device = runtime.model, runtime.device
    with torch.inference_mode(), hook.stage("speaker_conditioning"):
        audio = audio[:, : GPT_SAMPLE_RATE * settings.max_ref_len].to(device)
        if settings.sound_norm_refs:
            audio = (audio / torch.abs(audio).max()) * 0.75
        with hook.stage("speaker_embedding"):
            # The speaker encoder stays fp32 in every mode (see precision.py); no autocast either.
            audio_16k = torchaudio.functional.resample(audio, GPT_SAMPLE_RATE, SPEAKER_ENCODER_RATE)
            speaker = model.hifigan_decoder.speaker_encoder.forward(audio_16k, l2_norm=True).unsqueeze(-1)
            hook.annotate("dtype.speaker_embedding", dtype_name(speaker))
        with hook.stage("gpt_conditioning"), runtime.plan.autocast():
            cond = audio[:, : GPT_SAMPLE_RATE * settings.gpt_cond_len]
            step = GPT_SAMPLE_RATE * settings.gpt_cond_chunk_len
            style_embs = []
            for start in range(0, cond.shape[1], step):
                piece = cond[:, start : start + step]
                if piece.size(-1) < GPT_SAMPLE_RATE * MIN_REFERENCE_S:
                    continue
                mel = wav_to_mel_cloning(
                    piece, mel_norms=model.mel_stats.cpu(), n_fft=2048, hop_length=256, win_length=1024,
                    power=2, normalized=False, sample_rate=GPT_SAMPLE_RATE, f_min=0, f_max=8000, n_mels=80,
                )
                style_embs.append(model.gpt.get_style_emb(mel.to(device, runtime.compute_dtype), None))
            if not style_embs:
                raise InputError(f"reference audio too short for GPT conditioning (< {MIN_REFERENCE_S} s)")
            latent = torch.stack(style_embs).mean(dim=0).transpose(1, 2)
            hook.annotate("dtype.gpt_conditioning", dtype_name(latent))
    return VoiceProfile(gpt_cond_latent=latent, speaker_embedding=speaker)


def _sentences(runtime: XttsRuntime, text: str, gen: GenerationSettings) -> list[str]:
    from TTS.tts.layers.xtts.tokenizer import split_sentence

    language = gen.language.split("-")[0]
    if gen.enable_text_splitting:
        return split_sentence(text, language, runtime.model.tokenizer.char_limits[language])
    return [text]


def tokenize(runtime: XttsRuntime, text: str, gen: GenerationSettings, hook: StageHook) -> list[Sentence]:
    """``VoiceBpeTokenizer.encode`` split in its normalisation and its BPE lookup."""
    import torch

    tokenizer = runtime.model.tokenizer
    language = gen.language.split("-")[0]
    with hook.stage("text_normalization"):
        raw = _sentences(runtime, text, gen)
        cleaned = [tokenizer.preprocess_text(s.strip().lower(), language) for s in raw]
    with hook.stage("tokenization"):
        tag = "zh-cn" if language == "zh" else language
        tokens = []
        for sentence in cleaned:
            ids = tokenizer.tokenizer.encode(f"[{tag}]{sentence}".replace(" ", "[SPACE]")).ids
            if len(ids) >= runtime.model.args.gpt_max_text_tokens:
                raise InputError(
                    f"a sentence is {len(ids)} tokens; XTTS takes under {runtime.model.args.gpt_max_text_tokens}: "
                    "shorten it or turn on enable_text_splitting"
                )
            tokens.append(torch.IntTensor(ids).unsqueeze(0).to(runtime.device))
    hook.annotate("text_tokens", sum(int(t.shape[-1]) for t in tokens))
    hook.annotate("audio_token_rule", "length_model" if gen.length_model else
                  ("fixed" if gen.fixed_length else "stop_token"))
    return [Sentence(sentence, ids) for sentence, ids in zip(raw, tokens, strict=True)]


def audio_token_target(runtime: XttsRuntime, sentence: str, gen: GenerationSettings) -> int:
    """The generation cap for one sentence: the length model's estimate, or max_audio_tokens."""
    from engines.xtts.length_model import estimate_audio_tokens

    if gen.length_model:
        return estimate_audio_tokens(sentence, gen.language, runtime.max_gen_tokens)
    return min(gen.max_audio_tokens, runtime.max_gen_tokens)


def _generate_kwargs(runtime: XttsRuntime, gen: GenerationSettings, audio_tokens: int) -> dict[str, Any]:
    # The model's cap is an attribute GPT.generate reads; set per sentence so the knob applies.
    runtime.model.gpt.max_gen_mel_tokens = audio_tokens
    kwargs: dict[str, Any] = {
        "do_sample": gen.do_sample,
        "top_p": gen.top_p,
        "top_k": gen.top_k,
        "temperature": gen.temperature,
        "length_penalty": float(gen.length_penalty),
        "repetition_penalty": float(gen.repetition_penalty),
    }
    if gen.fixed_length:
        kwargs["min_new_tokens"] = runtime.model.gpt.max_gen_mel_tokens
    return kwargs


class GenerationTimer:
    """An HF streamer that splits ``generate`` into prefill and per-token decode stages.

    ``generate`` calls ``put`` with the prompt first, then once per sampled
    token. Prefill is the prompt forward plus the first token; every later
    ``put`` closes one decode step, whose duration goes to ``gpt_token_s``.
    """

    def __init__(self, hook: StageHook) -> None:
        self._hook = hook
        self._stages = ExitStack()
        self._puts = 0
        self._last = 0.0
        self.tokens = 0
        self.decode_s = 0.0

    def __enter__(self) -> GenerationTimer:
        self._stages.enter_context(self._hook.stage("gpt_prefill"))
        return self

    def put(self, value: Any) -> None:
        self._puts += 1
        if self._puts == 1:
            return  # the prompt
        now = time.perf_counter()
        self.tokens += 1
        if self._puts == 2:
            self._stages.close()
            self._stages.enter_context(self._hook.stage("gpt_decode"))
        else:
            self._hook.observe("gpt_token_s", now - self._last)
            self.decode_s += now - self._last
        self._last = now

    def end(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        self._stages.close()


class _DtypeProbe:
    """Forward hook on the first GPT-2 block's MLP matmul: the dtype prefill and decode compute in.

    The block outputs would not do: LayerNorm runs in fp32 under autocast, so
    the hidden states read fp32 even when every matmul ran in bf16.
    """

    def __init__(self, runtime: XttsRuntime, hook: StageHook) -> None:
        self._hook = hook
        self._calls = 0
        self._handle = runtime.model.gpt.gpt.h[0].mlp.c_fc.register_forward_hook(self._seen)

    def _seen(self, module: Any, args: Any, output: Any) -> None:
        self._calls += 1
        if self._calls <= 2:
            key = "dtype.gpt_prefill" if self._calls == 1 else "dtype.gpt_decode"
            self._hook.annotate(key, dtype_name(output))

    def remove(self) -> None:
        self._handle.remove()


def _scale_latents(latents: torch.Tensor, speed: float) -> torch.Tensor:
    import torch.nn.functional as F

    length_scale = 1.0 / max(speed, 0.05)
    if length_scale == 1.0:
        return latents
    return F.interpolate(latents.transpose(1, 2), scale_factor=length_scale, mode="linear").transpose(1, 2)


def synthesize(
    runtime: XttsRuntime, text: str, profile: VoiceProfile, gen: GenerationSettings, hook: StageHook
) -> np.ndarray:
    """``Xtts.inference`` with every stage timed; returns float32 samples at 24 kHz."""
    import torch

    model, plan = runtime.model, runtime.plan
    sentences = tokenize(runtime, text, gen, hook)
    cond = profile.gpt_cond_latent.to(runtime.device, runtime.compute_dtype)
    speaker = profile.speaker_embedding.to(runtime.device, runtime.decoder_dtype)
    wavs = []
    generated = decode_s = 0.0
    probe = _DtypeProbe(runtime, hook)
    try:
        with torch.inference_mode(), plan.autocast():
            for sentence in sentences:
                text_tokens = sentence.tokens
                kwargs = _generate_kwargs(runtime, gen, audio_token_target(runtime, sentence.text, gen))
                with GenerationTimer(hook) as timer:
                    codes = model.gpt.generate(
                        cond_latents=cond, text_inputs=text_tokens, num_return_sequences=model.gpt_batch_size,
                        num_beams=1, output_attentions=False, streamer=timer, **kwargs,
                    )
                generated += timer.tokens
                decode_s += timer.decode_s
                with hook.stage("gpt_latent_pass"):
                    expected_len = torch.tensor([codes.shape[-1] * model.gpt.code_stride_len], device=runtime.device)
                    text_len = torch.tensor([text_tokens.shape[-1]], device=runtime.device)
                    latents = model.gpt(
                        text_tokens, text_len, codes, expected_len, cond_latents=cond,
                        return_attentions=False, return_latent=True,
                    )
                    latents = _scale_latents(latents, gen.speed)
                    hook.annotate("dtype.gpt_latent_pass", dtype_name(latents))
                with hook.stage("hifigan_decode"):
                    wav = model.hifigan_decoder(latents.to(runtime.decoder_dtype), g=speaker)
                    hook.annotate("dtype.hifigan_decode", dtype_name(wav))
                    wavs.append(wav.squeeze())
    finally:
        probe.remove()
    _annotate_tokens(hook, int(generated), decode_s)
    with hook.stage("post_processing"):
        # .float() first: numpy has no bfloat16 (where coqui's inference() fails under bf16).
        samples = torch.cat(wavs, dim=0).float().cpu().numpy()
        return np.clip(samples, -1.0, 1.0).astype(np.float32)


def _annotate_tokens(hook: StageHook, tokens: int, decode_s: float) -> None:
    hook.annotate("gpt_tokens", tokens)
    # Prefill produces the first token; tokens/s is over the decode steps that follow it.
    if tokens > 1 and decode_s > 0:
        hook.annotate("gpt_tokens_per_s", (tokens - 1) / decode_s)


def stream(
    runtime: XttsRuntime,
    text: str,
    profile: VoiceProfile,
    gen: GenerationSettings,
    streaming: StreamSettings,
    hook: StageHook,
) -> Iterator[np.ndarray]:
    """``Xtts.inference_stream`` with stages; yields float32 chunks at 24 kHz."""
    import torch

    model, plan = runtime.model, runtime.plan
    sentences = tokenize(runtime, text, gen, hook)
    cond = profile.gpt_cond_latent.to(runtime.device, runtime.compute_dtype)
    speaker = profile.speaker_embedding.to(runtime.device, runtime.decoder_dtype)
    total_tokens, decode_s = 0, 0.0
    probe = _DtypeProbe(runtime, hook)
    try:
        for sentence in sentences:
            text_tokens = sentence.tokens
            kwargs = _generate_kwargs(runtime, gen, audio_token_target(runtime, sentence.text, gen))
            with torch.inference_mode(), plan.autocast():
                with hook.stage("gpt_prefill"):
                    fake_inputs = model.gpt.compute_embeddings(cond, text_tokens)
                    generator = model.gpt.get_generator(
                        fake_inputs=fake_inputs, num_beams=1, num_return_sequences=1, output_attentions=False,
                        output_hidden_states=True, return_dict_in_generate=True, **kwargs,
                    )
                    first = next(generator, None)
                decoder = _stream_decoder(runtime, speaker, streaming)
            latents: list[torch.Tensor] = [first[1]] if first is not None else []
            pending = len(latents)
            total_tokens += len(latents)
            done = first is None
            while True:
                if done or (streaming.chunk_size > 0 and pending >= streaming.chunk_size):
                    if latents:
                        yield _decode_chunk(runtime, decoder, latents, gen, done, hook)
                    pending = 0
                    if done:
                        break
                with torch.inference_mode(), plan.autocast():
                    start = time.perf_counter()
                    with hook.stage("gpt_decode"):
                        step = next(generator, None)
                    elapsed = time.perf_counter() - start
                if step is None:
                    done = True
                    continue
                hook.observe("gpt_token_s", elapsed)
                decode_s += elapsed
                latents.append(step[1])
                pending += 1
                total_tokens += 1
    finally:
        probe.remove()
        _annotate_tokens(hook, total_tokens, decode_s)


def _stream_decoder(runtime: XttsRuntime, speaker: torch.Tensor, streaming: StreamSettings) -> StreamDecoder:
    if streaming.decoder == "windowed":
        return WindowedStreamDecoder(
            runtime.model.hifigan_decoder, speaker, streaming.overlap, streaming.context_frames
        )
    return CoquiStreamDecoder(runtime.model, speaker, streaming.overlap)


def _decode_chunk(
    runtime: XttsRuntime,
    decoder: StreamDecoder,
    latents: list[torch.Tensor],
    gen: GenerationSettings,
    is_final: bool,
    hook: StageHook,
) -> np.ndarray:
    import torch

    with torch.inference_mode(), runtime.plan.autocast():
        with hook.stage("hifigan_decode"):
            stacked = _scale_latents(torch.cat(latents, dim=0)[None, :], gen.speed)
            wav = decoder.push(stacked.to(runtime.decoder_dtype), is_final)
            hook.annotate("dtype.hifigan_decode", dtype_name(wav))
        with hook.stage("post_processing"):
            return np.clip(wav.float().cpu().numpy(), -1.0, 1.0).astype(np.float32)
