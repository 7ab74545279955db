"""A loopback server speaking just enough of the OpenAI protocol to inject faults.

Used only for fault injection (errors, timeouts, garbage): real teacher behaviour is tested against
llama.cpp's own server. Each request takes the next behaviour from a script; when the script runs
out, it keeps using the last one.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_TEXT = "Q: What is one plus one?\nA: One plus one is <<1+1=2>>2.\nAnswer: 2"


def completion_body(text: str | None = GOOD_TEXT, usage: object = None, finish: object = "stop") -> bytes:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "fault-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }
    ).encode()


# Replies that are valid JSON with fields a sloppy server fills oddly: null counts, null text.
ODD_BODIES = {
    "null-usage": completion_body(usage={"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}),
    "odd-usage": completion_body(usage={"prompt_tokens": "11", "completion_tokens": -3}),
    "null-text": completion_body(text=None, finish=None),
    "odd-text": completion_body(text=7, finish=["stop"]),  # type: ignore[arg-type]
}


class FaultServer:
    """`with FaultServer(["500", "ok"]) as server: server.url`; `server.requests` counts the calls."""

    def __init__(self, script: list[str], delay: float = 3.0):
        self.script, self.delay, self.requests = list(script), delay, 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # /v1/models
                self._send(
                    200, json.dumps({"object": "list", "data": [{"id": "fault-model", "object": "model"}]}).encode()
                )

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    behaviour = owner.script[min(owner.requests, len(owner.script) - 1)]
                    owner.requests += 1
                if behaviour == "ok":
                    self._send(200, completion_body())
                elif behaviour in ODD_BODIES:
                    self._send(200, ODD_BODIES[behaviour])
                elif behaviour == "timeout":
                    time.sleep(owner.delay)
                    self._send(200, completion_body())
                elif behaviour == "garbage":
                    self._send(200, b"<html>502 Bad Gateway</html>", content_type="text/html")
                elif behaviour == "truncated":
                    self._send(200, completion_body()[:40])
                else:
                    self._send(int(behaviour), json.dumps({"error": {"message": f"injected {behaviour}"}}).encode())

            def _send(self, status, body, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
