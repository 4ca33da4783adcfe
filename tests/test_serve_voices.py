"""Reference voices in the serving target: option parsing and upload checks (pure), the library, and real
servers (``python -m profiling serve`` subprocesses on loopback): XTTS random-tiny with the default voice
(the voice cache misses once, then hits), uploads and every refusal, F5 random-tiny under a tiny load test.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import soundfile

from engines.errors import InputError
from profiling.cli.main import main
from profiling.loadgen.client import ClientOptions
from profiling.loadgen.runner import LoadTest, run_load_test
from profiling.loadgen.targets import Target, TargetSpec, running_target, server_command
from profiling.serve.protocol import ApiError
from profiling.serve.voices import (
    MAX_REFERENCE_BYTES,
    VoiceLibrary,
    build_library,
    check_reference_audio,
    parse_voice_option,
)
from tests.cli_in_process import run_main
from tests.conftest import REPO_ROOT
from tests.raw_http import raw_exchange


def audio_bytes(seconds: float, rate: int = 16000, channels: int = 1, fmt: str = "WAV",
                amplitude: float = 0.3) -> bytes:
    """A tone with a little noise (any sound clones with random weights), encoded as ``fmt``."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    mono = (amplitude * np.sin(2 * np.pi * 180 * t) + amplitude * 0.05 * rng.standard_normal(len(t)))
    samples = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), rate, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def reference_wav(tmp_path: Path) -> Path:
    path = tmp_path / "ref.wav"
    path.write_bytes(audio_bytes(2.0))
    return path


# --- parse_voice_option (pure) -----------------------------------------------------------------------------
def test_voice_option_parses_name_path_and_a_transcript_with_commas(reference_wav: Path) -> None:
    assert parse_voice_option(f"alice={reference_wav}") == ("alice", reference_wav, None)
    name, path, text = parse_voice_option(f"a.b-c_1={reference_wav},text= Hello, world. ")
    assert (name, path, text) == ("a.b-c_1", reference_wav, "Hello, world.")


@pytest.mark.parametrize("option", [
    "alice", "alice=", "=REF", "bad name=REF", "x" * 65 + "=REF", "alice=/no/such/file.wav", "alice=REF,text=",
    "alice=REF,text=   ", "alice=REF,text=a\x00b", "ali/ce=REF",
])
def test_bad_voice_options_are_input_errors(option: str, reference_wav: Path) -> None:
    with pytest.raises(InputError):
        parse_voice_option(option.replace("REF", str(reference_wav)))


# --- check_reference_audio (pure) --------------------------------------------------------------------------
@pytest.mark.parametrize("seconds, rate, channels, fmt", [
    (2.0, 16000, 1, "WAV"), (3.0, 44100, 2, "FLAC"), (29.5, 8000, 1, "WAV"), (0.6, 24000, 2, "WAV"),
])
def test_references_of_any_rate_mono_or_stereo_wav_or_flac_pass(seconds: float, rate: int, channels: int,
                                                                 fmt: str) -> None:
    info = check_reference_audio(audio_bytes(seconds, rate, channels, fmt))
    assert info.format == fmt.lower() and info.sample_rate == rate and info.channels == channels
    assert info.seconds == pytest.approx(seconds, abs=1e-3)


def _truncated() -> bytes:
    data = audio_bytes(2.0)
    return data[:44] + data[44:1000]  # a header that promises more frames than follow


@pytest.mark.parametrize("data, status, words", [
    (b"", 400, "empty"),
    (b"hello world, not audio at all" * 10, 400, "not readable"),
    (audio_bytes(31.0, 8000), 400, "over the limit of 30 s"),
    (audio_bytes(0.2), 400, "at least 0.5 s"),
    (audio_bytes(2.0, amplitude=0.0), 400, "silent"),
    (audio_bytes(2.0, fmt="OGG"), 400, "not WAV or FLAC"),
    (audio_bytes(2.0, channels=3), 400, "channels"),
    (b"RIFF" + b"\0" * (MAX_REFERENCE_BYTES), 413, "10 MB"),
])
def test_bad_references_are_refused_with_their_reason(data: bytes, status: int, words: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_reference_audio(data)
    assert refused.value.status == status and words in refused.value.message


def test_a_truncated_wav_is_refused_or_read_as_what_it_holds() -> None:
    # libsndfile reads a truncated data chunk as the frames present: never more than the bytes hold.
    try:
        info = check_reference_audio(_truncated())
    except ApiError as refused:
        assert refused.status == 400
    else:
        assert info.seconds < 2.0


# --- the library (pure, no server) ------------------------------------------------------------------------
def test_a_non_cloning_engine_keeps_its_names_and_takes_no_references(reference_wav: Path) -> None:
    library = build_library("piper", cloning=False, options=())
    assert library.names() == ("default", "piper")
    assert library.get("piper").is_default and library.get("default").is_default
    with pytest.raises(ApiError) as refused:
        library.add("alice", reference_wav.read_bytes())
    assert refused.value.status == 400 and "does not clone" in refused.value.message
    with pytest.raises(InputError, match="does not clone"):
        build_library("piper", cloning=False, options=(f"alice={reference_wav}",))
    with pytest.raises(ApiError) as unknown:
        library.get("alice")
    assert unknown.value.status == 400


def test_a_cloning_library_offers_default_options_and_uploads(reference_wav: Path) -> None:
    library = build_library("xtts", cloning=True, options=(f"alice={reference_wav},text=Hi there.",))
    try:
        assert library.names() == ("alice", "default")
        alice, default = library.get("alice"), library.get("default")
        assert default == alice and alice.reference_audio == reference_wav.resolve()
        assert alice.reference_text == "Hi there."
        entry = library.add("bob", audio_bytes(1.0, fmt="FLAC"), "Bob speaks.")
        assert entry.source == "upload" and entry.path.is_file() and entry.path.suffix == ".flac"
        assert [d["name"] for d in library.describe()] == ["alice", "default", "bob"]
        for call, status in [(lambda: library.add("bob", audio_bytes(1.0)), 409),
                             (lambda: library.remove("alice"), 409), (lambda: library.remove("carol"), 404)]:
            with pytest.raises(ApiError) as refused:
                call()
            assert refused.value.status == status
        kept = entry.path
    finally:
        library.close()
    assert not kept.exists() and "bob" not in library.names()


@pytest.mark.parametrize("option", ["bad name=REF", "alice=/no/such.wav", "alice=SHORT", "alice=REF,text="])
def test_a_bad_serve_voice_option_is_an_input_error(option: str, reference_wav: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    short.write_bytes(audio_bytes(0.1))
    with pytest.raises(InputError, match="--voice"):
        build_library("xtts", cloning=True, options=(option.replace("REF", str(reference_wav))
                                                      .replace("SHORT", str(short)),))


def test_the_voice_cap_refuses_one_more() -> None:
    library = VoiceLibrary(cloning=True, max_voices=2, engine="xtts")
    try:
        library.add("a", audio_bytes(0.6))
        library.add("b", audio_bytes(0.6))
        with pytest.raises(ApiError) as refused:
            library.add("c", audio_bytes(0.6))
        assert refused.value.status == 409 and "limit" in refused.value.message
    finally:
        library.close()


def test_the_default_reference_has_its_exact_transcript(tmp_path: Path) -> None:
    library = build_library("xtts", cloning=True, options=())
    try:
        (entry,) = library.entries()
        assert entry.name == "default" and entry.source == "default" and entry.path.is_file()
        assert entry.transcript and entry.seconds > 1.0
    finally:
        library.close()


# --- the CLI refuses bad voices before any model loads ----------------------------------------------------------
# Piper's refusal is the real process the user starts; XTTS's goes through the same main() in this process (a
# second interpreter would import torch and coqui again for a refusal made before any of them is used).
@pytest.mark.parametrize("engine, option, real_process", [("piper", "alice=REF", True), ("xtts", "alice=SHORT", False)],
                         ids=["piper-alice=REF", "xtts-alice=SHORT"])
def test_serve_refuses_a_bad_voice_in_one_line(engine: str, option: str, real_process: bool, reference_wav: Path,
                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.wav"
    short.write_bytes(audio_bytes(0.1))
    option = option.replace("REF", str(reference_wav)).replace("SHORT", str(short))
    args = ("serve", "--engine", engine, "--port", "0", "--voice", option)
    done = (subprocess.run([sys.executable, "-m", "profiling", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=120) if real_process else run_main(*args, capsys=capsys))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: --voice")
    assert "ready" not in done.stdout


def test_load_passes_voices_to_the_server_and_checks_them(reference_wav: Path) -> None:
    assert main(["load", "--voice", "bad", "--no-store"]) == 2
    assert main(["load", "--null", "--voice", f"a={reference_wav}", "--no-store"]) == 2
    from profiling.cli.commands.load import _test_from_args
    from profiling.cli.main import build_parser

    argv = ["load", "--engine", "xtts", "--voice", f"alice={reference_wav},text=Hi, you.", "--client-voice", "alice"]
    test = _test_from_args(build_parser(argv).parse_args(argv))
    assert test.target.voices == (("alice", f"{reference_wav.resolve()},text=Hi, you."),)
    assert test.client.voice == "alice"
    command = server_command(test.target)
    assert command[command.index("--voice") + 1] == f"alice={reference_wav.resolve()},text=Hi, you."


# --- XTTS random-tiny served ---------------------------------------------------------------------------------
XTTS_KNOBS = (("weights", "random-tiny"), ("warmup", "0"), ("voice_cache", "memory"), ("max_audio_tokens", "6"),
              ("torch_threads", "1"))


@pytest.fixture(scope="module")
def xtts_target() -> Iterator[Target]:
    pytest.importorskip("TTS")
    pytest.importorskip("torch")
    spec = TargetSpec(kind="lab", engine="xtts", workers=1, knobs=XTTS_KNOBS, queue_size=4)
    with running_target(spec) as target:
        yield target


def speak(target: Target, request_id: str, voice: str | None = None, stream: bool = False) -> httpx.Response:
    body: dict[str, object] = {"input": "Hello there.", "stream": stream}
    if voice is not None:
        body["voice"] = voice
    return httpx.post(target.speech_url, json=body, headers={"X-Request-Id": request_id}, timeout=120)


def timeline(target: Target, request_id: str) -> dict[str, object]:
    answer = httpx.get(f"{target.base_url}/v1/timelines/{request_id}", timeout=10)
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


@pytest.mark.torch
def test_xtts_serves_the_default_voice_and_its_conditioning_is_cached(xtts_target: Target) -> None:
    assert "voices=default" in xtts_target.ready_line
    listed = httpx.get(f"{xtts_target.base_url}/v1/voices", timeout=10).json()["data"]
    assert [(v["name"], v["source"]) for v in listed] == [("default", "default")] and listed[0]["transcript"]
    first, second = speak(xtts_target, "x-first"), speak(xtts_target, "x-second", voice="default")
    assert first.status_code == second.status_code == 200 and len(first.content) > 1000
    one, two = timeline(xtts_target, "x-first"), timeline(xtts_target, "x-second")
    assert one["voice"] == two["voice"] == "default" and one["worker"] == two["worker"] == 0
    # The worker's warm-up spoke in the default voice, so its conditioning was already cached.
    for served in (one, two):
        annotations = served["annotations"]
        assert isinstance(annotations, dict) and annotations["voice_cache"] == "hit"
        assert annotations["voice_cache_saving_s"] > 0  # the conditioning time the hit saved
        assert "speaker_conditioning" not in {s["path"] for s in served["stages"]}  # type: ignore[attr-defined]


@pytest.mark.torch
def test_an_uploaded_voice_is_listed_spoken_deleted_then_refused(xtts_target: Target) -> None:
    url = f"{xtts_target.base_url}/v1/voices"
    made = httpx.post(url, params={"name": "carol", "text": "A test voice."}, content=audio_bytes(2.0, 22050, 2),
                      headers={"Content-Type": "audio/wav"}, timeout=30)
    assert made.status_code == 201 and made.json()["source"] == "upload"
    assert made.json()["sample_rate"] == 22050
    assert "carol" in [v["name"] for v in httpx.get(url, timeout=10).json()["data"]]
    assert "carol" in httpx.get(f"{xtts_target.base_url}/v1/audio/voices", timeout=10).json()["voices"]
    spoken = speak(xtts_target, "x-carol", voice="carol", stream=True)
    assert spoken.status_code == 200 and len(spoken.content) > 1000
    again = speak(xtts_target, "x-carol-again", voice="carol")
    assert again.status_code == 200
    missed, hit = timeline(xtts_target, "x-carol"), timeline(xtts_target, "x-carol-again")
    assert missed["annotations"]["voice_cache"] == "miss" and hit["annotations"]["voice_cache"] == "hit"  # type: ignore[index]
    # The miss paid the conditioning (a stage of its timeline); the hit says what it saved.
    conditioning = {s["path"]: s["duration_s"] for s in missed["stages"]}["speaker_conditioning"]  # type: ignore[attr-defined]
    assert conditioning > 0 and "speaker_conditioning" not in {s["path"] for s in hit["stages"]}  # type: ignore[attr-defined]
    assert hit["annotations"]["voice_cache_saving_s"] == pytest.approx(conditioning, rel=0.5)  # type: ignore[index]
    assert httpx.delete(f"{url}/carol", timeout=10).status_code == 200
    gone = speak(xtts_target, "x-gone", voice="carol")
    assert gone.status_code == 400 and "unknown voice 'carol'" in gone.json()["error"]["message"]


def _raw_upload_head(target: Target, declared: int, sent: int) -> bytes:
    """Declare ``declared`` bytes, send ``sent`` of them, and read what the server answers."""
    parsed = urlparse(target.base_url)
    head = (f"POST /v1/voices?name=big HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    return raw_exchange(int(parsed.port or 80), head, b"\0" * sent, host=parsed.hostname or "127.0.0.1", timeout_s=30)


@pytest.mark.torch
def test_every_refused_upload_is_a_4xx_with_its_reason(xtts_target: Target) -> None:
    url = f"{xtts_target.base_url}/v1/voices"
    httpx.post(url, params={"name": "taken"}, content=audio_bytes(1.0), timeout=30).raise_for_status()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        for _ in range(200):
            yield b"\0" * 65536

    cases = [
        ("too long", dict(params={"name": "long"}, content=audio_bytes(31.0, 8000)), 400, "30 s"),
        ("too big", dict(params={"name": "big"}, content=b"\0" * (MAX_REFERENCE_BYTES + 100)), 413, "10 MB"),
        # Chunked, past the route's read cap and the server's body cap: whichever cuts it first answers.
        ("too big, chunked", dict(params={"name": "big"}, content=chunks()), 413, ("10 MB", "limit of")),
        ("not audio", dict(params={"name": "noise"}, content=b"not audio " * 100), 400, "not readable"),
        ("bad name", dict(params={"name": "no/slash"}, content=audio_bytes(1.0)), 400, "bad voice name"),
        ("no name", dict(content=audio_bytes(1.0)), 400, "bad voice name"),
        ("duplicate", dict(params={"name": "taken"}, content=audio_bytes(1.0)), 409, "already exists"),
        ("default taken", dict(params={"name": "default"}, content=audio_bytes(1.0)), 409, "already exists"),
        ("not audio type", dict(params={"name": "t"}, content=audio_bytes(1.0), headers={"Content-Type": "text/plain"}),
         415, "not audio"),
        ("empty text", dict(params={"name": "e", "text": " "}, content=audio_bytes(1.0)), 400, "transcript"),
    ]
    for label, request, status, words in cases:
        answer = httpx.post(url, timeout=60, **request)  # type: ignore[arg-type]
        assert answer.status_code == status, (label, answer.text)
        message = answer.json()["error"]["message"]
        assert any(w in message for w in ((words,) if isinstance(words, str) else words)), (label, message)
    for path, status in [("nobody", 404), ("default", 409)]:
        answer = httpx.delete(f"{url}/{path}", timeout=10)
        assert answer.status_code == status and answer.json()["error"]["message"]
    # Declared over the cap, 64 KB sent: the 413 comes back without the server waiting for the rest.
    head = _raw_upload_head(xtts_target, MAX_REFERENCE_BYTES + 1, 65536)
    assert head.startswith(b"HTTP/1.1 413")
    assert httpx.get(f"{xtts_target.base_url}/health", timeout=10).status_code == 200


# --- F5 random-tiny served and load-tested ---------------------------------------------------------------------
@pytest.mark.torch
def test_f5_is_load_tested_out_of_the_box_with_the_default_voice() -> None:
    pytest.importorskip("f5_tts")
    pytest.importorskip("torch")
    spec = TargetSpec(kind="lab", engine="f5", workers=1, queue_size=4,
                      knobs=(("weights", "random-tiny"), ("nfe_step", "2"), ("torch_threads", "1")))
    test = LoadTest(target=spec, rates=(2.0,), duration_s=1.0, max_requests=2, text_set="short",
                    client=ClientOptions(warmup=0, request_timeout_s=120))
    result = run_load_test(test, store=None)
    (run,) = result.runs
    assert len(run.rows) == 2 and all(row.ok for row in run.rows), [row.error for row in run.rows]
    assert all(row.audio_s and row.audio_s > 0 for row in run.rows)
    assert "voices=default" in result.ready_line
    # The server's timelines: the default voice, whose preprocessed reference F5 computed in the worker's
    # warm-up and every request reused.
    timelines = sorted((run.server[row.request_id] for row in run.rows), key=lambda t: t["received_unix"])
    assert [t["voice"] for t in timelines] == ["default", "default"]
    assert [t["annotations"]["reference_cached"] for t in timelines] == [True, True]


@pytest.mark.torch
def test_f5_needs_the_transcript_of_a_given_voice(reference_wav: Path) -> None:
    pytest.importorskip("f5_tts")
    from engines.base import SynthesisSettings
    from profiling.serve.server import ServerOptions, check_options, voice_library

    options = ServerOptions(SynthesisSettings("f5", knobs={"weights": "random-tiny"}), voices=(f"a={reference_wav}",))
    with pytest.raises(InputError, match="transcript"):
        voice_library(options, check_options(options))
    options = ServerOptions(options.settings, voices=(f"a={reference_wav},text=Some words.",))
    library = voice_library(options, check_options(options))
    try:
        assert library.names() == ("a", "default")
        with pytest.raises(ApiError) as refused:
            library.add("b", audio_bytes(1.0))  # an upload without its transcript
        assert refused.value.status == 400 and "transcript" in refused.value.message
    finally:
        library.close()
