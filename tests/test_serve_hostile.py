"""A hostile client against the real server: every refusal a 4xx with its reason, never a 5xx, and the
server's memory flat. One Piper server (with an API key, given through the environment as the load
generator gives it) serves the whole module; the protocol checks also run as plain unit tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import psutil
import pytest

from engines.errors import InputError
from profiling.cli.main import main
from profiling.loadgen.client import ClientOptions, run_rate
from profiling.loadgen.schedule import arrival_schedule
from profiling.loadgen.targets import API_KEY_ENV, Target, TargetSpec, running_target, server_command, server_env
from profiling.serve import guards
from profiling.serve.guards import GuardSettings, authorized, exposure_warning, resolve_api_key
from profiling.serve.protocol import MAX_JSON_DEPTH, ApiError, json_depth_exceeds, parse_speech_request
from profiling.serve.timeline import TimelineStore
from tests.raw_http import raw_exchange

KEY = "test-key-1234"
AUTH = {"Authorization": f"Bearer {KEY}"}
BIG = 64 * 1024 * 1024
RSS_SLACK = 100 * 1024 * 1024
VOICES, MODELS = ("default", "piper"), ("piper",)


# --- unit: the protocol's checks ------------------------------------------------------------------------

def parse(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as refused:
        parse_speech_request(body, VOICES, MODELS, 2000)
    assert refused.value.status == 400
    return refused.value


@pytest.mark.parametrize(("body", "reason"), [
    (b"[" * 200_000, "nests deeper"),
    (b'{"input": ' + b"[" * 65 + b"]" * 65 + b"}", "nests deeper"),
    (b'{"input": "\\ud800"}', "'input' contains a lone surrogate"),
    (b'{"input": "a\\udc00b"}', "'input' contains a lone surrogate"),
    (b'{"input": "hi", "voice": "\\ud800"}', "'voice' contains a lone surrogate"),
    (b'{"input": "hi", "model": "\\udfff"}', "'model' contains a lone surrogate"),
    (b'{"input": "\xff\xfe\xfd"}', "not valid UTF-8"),
    (b"input=hello", "not valid JSON"),
    (b"", "not valid JSON"),
    (b'{"input": 1' + b"0" * 5000 + b"}", "not valid JSON"),  # longer than Python converts to int
    (b'"just a string"', "JSON object"),
    (b"null", "JSON object"),
    (b'{"input": ["hi"]}', "'input' is required and must be a string"),
    (b'{"input": "hi", "voice": ["default"]}', "'voice' must be a string"),
    (b'{"input": "hi", "voice": {"a": 1}}', "'voice' must be a string"),
    (b'{"input": "hi", "model": 7}', "'model' must be a string"),
    (b'{"input": "hi", "response_format": ["pcm"]}', "unsupported response_format"),
    (b'{"input": "hi", "stream": "yes"}', "'stream' must be true or false"),
])
def test_bad_bodies_are_400_with_a_reason(body: bytes, reason: str) -> None:
    assert reason in parse(body).message


def test_depth_counts_brackets_outside_strings_only() -> None:
    text = "[" * 200 + '\\"{{{'  # brackets (and an escaped quote) inside the text are not nesting
    ok = parse_speech_request(json.dumps({"input": text}).encode(), VOICES, MODELS, 2000)
    assert ok.text == text
    assert not json_depth_exceeds(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    assert json_depth_exceeds(b"[" * (MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds(b'{"a": "]]]]", "b": [[[[]]]]}', limit=4)


def test_a_known_request_id_is_refused_and_the_first_timeline_kept() -> None:
    store = TimelineStore(capacity=2)
    first = store.open("abc", 5)
    with pytest.raises(ApiError) as refused:
        store.open("abc", 99)
    assert refused.value.status == 409 and "already in use" in refused.value.message
    assert store.get("abc") is first and first.text_chars == 5
    store.open("b", 1)
    store.open("c", 1)  # "abc" forgotten: its id may be used again
    assert store.open("abc", 7).text_chars == 7


def test_guard_settings_caps_and_key_checks() -> None:
    settings = GuardSettings(max_body_bytes=4096)
    assert settings.body_cap("/v1/audio/speech") == 4096
    assert settings.body_cap("/v1/voices") == guards.UPLOAD_BODY_BYTES > 10_000_000
    assert settings.body_cap("/v1/voicesx") == 4096
    for bad in ({"max_body_bytes": 10}, {"api_key": " spaced "}, {"api_key": "caf\u00e9"}):
        with pytest.raises(InputError):
            GuardSettings(**bad)  # type: ignore[arg-type]
    scope = {"headers": [(b"authorization", b"Bearer " + KEY.encode())]}
    assert authorized(scope, KEY)
    assert not authorized(scope, KEY + "x") and not authorized({"headers": []}, KEY)
    assert not authorized({"headers": [(b"authorization", b"Basic " + KEY.encode())]}, KEY)
    assert resolve_api_key("", {API_KEY_ENV: " k "}) == "k" and resolve_api_key("flag", {API_KEY_ENV: "k"}) == "flag"
    assert resolve_api_key("", {}) == ""
    assert guards.API_KEY_ENV == API_KEY_ENV  # the load generator and the server agree on the variable


def test_binding_beyond_loopback_without_a_key_warns() -> None:
    assert exposure_warning("0.0.0.0", "") and "without an API key" in exposure_warning("10.1.2.3", "")
    assert not exposure_warning("0.0.0.0", KEY)
    assert not any(exposure_warning(h, "") for h in ("127.0.0.1", "localhost", "::1", "127.0.0.5"))


def test_the_key_goes_by_the_environment_never_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = TargetSpec(kind="lab", engine="piper", api_key=KEY)
    assert KEY not in " ".join(server_command(spec)) and "--api-key" not in server_command(spec)
    assert server_env(spec)[API_KEY_ENV] == KEY
    monkeypatch.setenv(API_KEY_ENV, "ours")  # our own environment's key never leaks into a keyless target
    assert API_KEY_ENV not in server_env(TargetSpec(kind="lab", engine="piper"))
    assert Target("http://127.0.0.1:1", spec).headers == AUTH and Target("http://x", TargetSpec()).headers == {}


@pytest.mark.parametrize(("args", "message"), [
    (("--max-body-bytes", "10"), "max body bytes"),
    (("--api-key", "has space"), "printable ASCII"),
])
def test_bad_limits_are_one_line_exit_2(args: tuple[str, ...], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", *args]) == 2  # refused before any model loads
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


# --- the real server ------------------------------------------------------------------------------------

@dataclass
class Hostile:
    target: Target
    rss_start: int
    statuses: list[tuple[str, int]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.target.base_url.rsplit(":", 1)[1])

    def record(self, case: str, status: int) -> int:
        self.statuses.append((case, status))
        rss = psutil.Process(self.target.pid).memory_info().rss
        assert rss - self.rss_start < RSS_SLACK, f"after {case}: RSS grew {(rss - self.rss_start) >> 20} MB"
        assert status < 500, f"{case}: {status}"
        return status

    def send(self, case: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.request(method, self.target.base_url + path, timeout=60, **kwargs)  # type: ignore[arg-type]
        self.record(case, response.status_code)
        return response

    def send_oversized(self, case: str, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        """Send a body the server refuses before reading: its answer, or None when the connection closed first.

        The server answers and closes while the client is still sending; the client's last writes then meet a
        closed socket, and whether the answer is read first is a race of the two machines' TCP stacks.
        """
        try:
            return self.send(case, method, path, **kwargs)
        except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
            self.record(case, 413)  # cut at the cap, unread: the raw-socket tests below read the 413 itself
            return None


@pytest.fixture(scope="module")
def server() -> Iterator[Hostile]:
    spec = TargetSpec(kind="lab", engine="piper", workers=1, queue_size=8, api_key=KEY,
                      knobs=(("deterministic", "true"), ("intra_op_threads", "1")))
    with running_target(spec) as target:
        assert target.pid is not None
        hostile = Hostile(target, psutil.Process(target.pid).memory_info().rss)
        yield hostile
        assert all(status < 500 for _, status in hostile.statuses), hostile.statuses


def error_of(response: httpx.Response) -> str:
    return response.json()["error"]["message"]


def test_the_key_is_required_everywhere_but_health(server: Hostile) -> None:
    speech = {"input": "Hello there.", "stream": False}
    assert server.send("health", "GET", "/health").status_code == 200
    for case, headers in (("no key", {}), ("wrong key", {"Authorization": "Bearer nope"}),
                          ("not bearer", {"Authorization": KEY})):
        for method, path in (("POST", "/v1/audio/speech"), ("GET", "/v1/models"), ("GET", "/v1/timelines"),
                             ("GET", "/nowhere")):
            response = server.send(case, method, path, headers=headers, json=speech)
            assert response.status_code == 401 and "API key" in error_of(response)
            assert response.headers["www-authenticate"] == "Bearer"
    assert server.send("right key", "POST", "/v1/audio/speech", headers=AUTH, json=speech).status_code == 200
    assert server.send("models", "GET", "/v1/models", headers=AUTH).status_code == 200


def test_the_load_generator_sends_the_key(server: Hostile) -> None:
    run = run_rate(server.target, arrival_schedule(2.0, 1.0, seed=1, max_requests=2),
                   [("t", "Turn left here.")], ClientOptions(warmup=0))
    assert run.rows and all(r.ok for r in run.rows), [r.error for r in run.rows]
    assert set(run.server) == {r.request_id for r in run.rows}  # timelines fetched with the key too


def test_a_64_mib_body_is_refused_unread(server: Hostile) -> None:
    response = server.send_oversized("64 MiB with length", "POST", "/v1/audio/speech", headers=AUTH,
                                     content=b"x" * BIG)
    assert response is None or (response.status_code == 413 and "limit of 1048576 bytes" in error_of(response))

    def chunks() -> Iterator[bytes]:
        for _ in range(BIG >> 20):
            yield b"x" * (1 << 20)

    response = server.send_oversized("64 MiB chunked", "POST", "/v1/audio/speech", headers=AUTH, content=chunks())
    assert response is None or (response.status_code == 413 and "limit" in error_of(response))
    # Unauthenticated, the body is not read either.
    response = server.send_oversized("64 MiB no key", "POST", "/v1/audio/speech", content=b"x" * BIG)
    assert response is None or response.status_code == 401


def test_the_server_answers_413_without_waiting_for_the_body(server: Hostile) -> None:
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    # A declared 64 MiB, none of it sent: answered from the header alone.
    head = b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\n" + auth + f"Content-Length: {BIG}\r\n\r\n".encode()
    answer = raw_exchange(server.port, head)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    server.record("declared 64 MiB, nothing sent", 413)
    # Chunked, 2 MiB sent and the body never ended: cut at the cap.
    head = b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
    piece = b"x" * (1 << 18)
    body = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") * 8
    answer = raw_exchange(server.port, head, body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    server.record("chunked 2 MiB, never ended", 413)


@pytest.mark.parametrize(("case", "request_bytes"), [
    ("Content-Length not a number", b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
    ("negative Content-Length", b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
    ("broken chunk framing", b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("not HTTP", b"garbage\r\n\r\n"),
])
def test_broken_http_is_400(server: Hostile, case: str, request_bytes: bytes) -> None:
    answer = raw_exchange(server.port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    server.record(case, 400)


def test_voice_uploads_have_their_own_larger_cap(server: Hostile) -> None:
    head = (b"POST /v1/voices?name=big HTTP/1.1\r\nHost: x\r\n" + f"Authorization: Bearer {KEY}\r\n".encode()
            + f"Content-Length: {11 << 20}\r\n\r\n".encode())
    answer = raw_exchange(server.port, head, b"x" * (1 << 16))  # 11 MiB declared, 64 KiB sent
    assert answer.startswith(b"HTTP/1.1 413") and str(guards.UPLOAD_BODY_BYTES).encode() in answer, answer[:300]
    server.record("11 MiB upload", 413)
    # 2 MiB is over the speech cap but not the upload cap: whatever the route answers, it is not a 413.
    under = server.send("2 MiB upload", "POST", "/v1/voices", headers=AUTH, content=b"x" * (2 << 20))
    assert under.status_code != 413


@pytest.mark.parametrize(("case", "body", "reason"), [
    ("200,000-deep JSON", b"[" * 200_000 + b"]" * 200_000, "nests deeper"),
    ("lone surrogate", b'{"input": "\\ud800"}', "lone surrogate"),
    ("lone surrogate voice", b'{"input": "hi", "voice": "\\ud800"}', "lone surrogate"),
    ("invalid UTF-8", b'{"input": "caf\xe9 \xff"}', "not valid UTF-8"),
    ("not JSON", b"input=hello&voice=default", "not valid JSON"),
    ("a JSON list", b'["input", "hi"]', "JSON object"),
    ("wrong type", b'{"input": "hi", "voice": ["a"]}', "must be a string"),
    ("huge number", b'{"input": 9' + b"9" * 100_000 + b"}", "not valid JSON"),
])
def test_bad_bodies_are_400_on_the_real_server(server: Hostile, case: str, body: bytes, reason: str) -> None:
    response = server.send(case, "POST", "/v1/audio/speech", headers={**AUTH, "content-type": "text/plain"},
                           content=body)
    assert response.status_code == 400 and reason in error_of(response), response.text


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/audio/speech", 405), ("PUT", "/v1/audio/speech", 405), ("DELETE", "/health", 405),
    ("GET", "/nowhere", 404), ("POST", "/v1/audio/speech/extra", 404), ("GET", "/v1/timelines/%00", 404),
])
def test_wrong_methods_and_routes_are_404_or_405(server: Hostile, method: str, path: str, status: int) -> None:
    assert server.send(f"{method} {path}", method, path, headers=AUTH).status_code == status


def test_a_repeated_request_id_leaves_the_first_timeline_intact(server: Hostile) -> None:
    first = server.send("first id", "POST", "/v1/audio/speech", json={"input": "Hello there.", "stream": False},
                        headers={**AUTH, "X-Request-Id": "hostile-dup-1"})
    assert first.status_code == 200 and first.headers["x-request-id"] == "hostile-dup-1"
    before = server.send("timeline", "GET", "/v1/timelines/hostile-dup-1", headers=AUTH).json()
    again = server.send("same id", "POST", "/v1/audio/speech", json={"input": "A much longer text, again."},
                        headers={**AUTH, "X-Request-Id": "hostile-dup-1"})
    assert again.status_code == 409 and "already in use" in error_of(again)
    after = server.send("timeline", "GET", "/v1/timelines/hostile-dup-1", headers=AUTH).json()
    assert after == before and after["status"] == "ok" and after["text_chars"] == len("Hello there.")


def test_memory_stayed_flat_over_the_hostile_run(server: Hostile) -> None:
    assert len(server.statuses) > 30  # the cases above ran against this server
    rss = psutil.Process(server.target.pid).memory_info().rss
    assert rss - server.rss_start < RSS_SLACK
