"""One HTTP/1.1 exchange on a raw socket whose body is never finished: what a server answers from the head
alone (a declared size over a cap, a slow or stalled upload), which an HTTP client cannot send."""

from __future__ import annotations

import socket


def raw_exchange(port: int, head: bytes, body: bytes = b"", host: str = "127.0.0.1", timeout_s: float = 20) -> bytes:
    """Send ``head`` (+ ``body``) and never end the body; return the answer's head and its body (the reason)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(head)
        try:
            sock.sendall(body)
        except OSError:  # the server cut the connection at its cap: its answer is already on its way
            pass
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        head_end = answer.find(b"\r\n\r\n") + 4
        length = next((int(line.split(b":")[1]) for line in answer[:head_end].split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(answer) < head_end + length:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        return answer
