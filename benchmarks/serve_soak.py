"""`socratic serve` soaked: 64 concurrent clients mixing good requests with every bad shape, for minutes.

    python benchmarks/serve_soak.py --model runs/gsm8k/unified --minutes 10 --clients 64
    nice python benchmarks/serve_soak.py --model runs/gsm8k/unified --minutes 1      # a shorter look

Not a test: it runs for minutes and prints figures (docs/RESULTS.md keeps them). The server is the
real command, `socratic serve`, started as a child process on a free loopback port, so that its
memory (RSS, from /proc) and its log (stderr) are its own. Each client loops until the time is up,
sending a good chat request (a GSM8K test problem) half of the time and otherwise one bad shape from
issue 35 in turn: a lone surrogate in the content or in "model", a 100,000-deep body, a
5,000-digit number, NaN, bytes that are not UTF-8, a body that is not an object, a 5 MiB body, a
problem too long for the student's context, a wrong model, no messages, a client that leaves
mid-body and one that leaves mid-stream. The contract, checked at the end: every good request
answered (200, with text), every bad one a 4xx in OpenAI's error shape (never a 500 or a hang),
RSS flat after the warm-up (its growth is printed), and no traceback in the server's log.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from socratic.tasks import load_task

GOOD_SHARE = 0.5


def chat(model: str, content, **extra) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}], **extra}).encode()


def bad_bodies(name: str) -> dict[str, bytes]:
    """Every bad request body of issue 35 (the two disconnects are sent by `send`, not as bodies)."""
    return {
        "surrogate content": chat(name, "\ud800"),
        "surrogate model": chat("\udcff", "What is 2 plus 3?"),
        "100k-deep body": b'{"model": "x", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "5,000-digit number": b'{"model": "x", "n": ' + b"9" * 5000 + b"}",
        "NaN": b'{"model": NaN}',
        "not UTF-8": b'{"model": "\xff\xfe"}',
        "not an object": b'["a list"]',
        "5 MiB body": b'{"pad": "' + b"x" * (5 * 2**20) + b'"}',
        "too long for the context": chat(name, "7 " * 3000),
        "wrong model": chat("gpt-4", "What is 2 plus 3?"),
        "no messages": json.dumps({"model": name, "messages": []}).encode(),
    }


DISCONNECTS = ("leaves mid-body", "leaves mid-stream")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(port: int, body: bytes, timeout: float = 600) -> tuple[int, dict | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, None  # not JSON: a plain-text page, counted as a broken reply
    finally:
        connection.close()


def leave_mid_body(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as raw:
        head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        raw.sendall(f'{head}Content-Length: 1000\r\n\r\n{{"model"'.encode())


def leave_mid_stream(port: int, name: str, question: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/v1/chat/completions", chat(name, question, stream=True), {"Content-Type": "x"})
    response = connection.getresponse()
    response.readline()  # the stream has begun ...
    connection.close()  # ... and the client goes away


def well_formed_error(reply: dict | None) -> bool:
    error = reply.get("error") if isinstance(reply, dict) else None
    return isinstance(error, dict) and set(error) == {"message", "type", "param", "code"} and bool(error["message"])


class Tally:
    """Outcomes per request kind, from all client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.good_seconds: list[float] = []

    def add(self, kind: str, outcome: str, seconds: float | None = None) -> None:
        with self.lock:
            self.counts[kind][outcome] += 1
            if seconds is not None:
                self.good_seconds.append(seconds)


def client(
    port: int, name: str, questions: list[str], bodies: dict[str, bytes], seed: int, until: float, tally: Tally
) -> None:
    rng = random.Random(seed)
    kinds = [*bodies, *DISCONNECTS]
    turn = seed
    while time.time() < until:
        if rng.random() < GOOD_SHARE:
            started = time.time()
            try:
                status, reply = post(port, chat(name, rng.choice(questions)))
            except OSError as e:
                tally.add("good", f"no reply ({type(e).__name__})")
                continue
            content = (reply or {}).get("choices", [{}])[0].get("message", {}).get("content") if reply else None
            tally.add("good", "answered" if status == 200 and content else f"{status}", time.time() - started)
            continue
        kind, turn = kinds[turn % len(kinds)], turn + 1
        try:
            if kind == "leaves mid-body":
                leave_mid_body(port)
                tally.add(kind, "sent")
            elif kind == "leaves mid-stream":
                leave_mid_stream(port, name, rng.choice(questions))
                tally.add(kind, "sent")
            else:
                status, reply = post(port, bodies[kind])
                ok = 400 <= status < 500 and well_formed_error(reply)
                tally.add(kind, f"{status}" if ok else f"{status} (not a well-formed 4xx)")
        except OSError as e:
            tally.add(kind, f"no reply ({type(e).__name__})")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_until_serving(port: int, server: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v1/models")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="student folder (or the folder holding qg/ and qa/)")
    parser.add_argument("--engine", default="llamacpp", choices=("hf", "llamacpp"))
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--log", default=None, help="keep the server's log here (default: a temporary file)")
    args = parser.parse_args()

    name = Path(args.model).resolve().name
    questions = [p.question for p in load_task("gsm8k").load("test", limit=200)]
    port = free_port()
    log_path = Path(args.log or f"/tmp/serve-soak-{os.getpid()}.log")
    command = [sys.executable, "-m", "socratic", "serve", "--model", args.model, "--engine", args.engine]
    command += ["--port", str(port), "--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.clients)]
    command += ["--threads", str(args.threads)] if args.threads else []
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, server)
        started = time.time()
        until = started + 60 * args.minutes
        tally, bodies = Tally(), bad_bodies(name)
        threads = [
            threading.Thread(target=client, args=(port, name, questions, bodies, n, until, tally), daemon=True)
            for n in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        samples: list[tuple[float, int]] = []
        while any(thread.is_alive() for thread in threads):
            samples.append((time.time() - started, rss_bytes(server.pid)))
            time.sleep(10)
        for thread in threads:
            thread.join()
        seconds = time.time() - started
        alive = server.poll() is None
        samples.append((seconds, rss_bytes(server.pid)))
    finally:
        server.terminate()
        server.wait(timeout=60)
    report(args, tally, samples, seconds, alive, log_path)


def report(args, tally: Tally, samples: list[tuple[float, int]], seconds: float, alive: bool, log_path: Path) -> None:
    log_text = log_path.read_text(errors="replace")
    tracebacks = log_text.count("Traceback")
    warm = [rss for t, rss in samples if t >= min(60.0, seconds / 5)] or [samples[-1][1]]
    good = tally.counts["good"]
    print(f"## serve soak: {args.clients} clients, {seconds / 60:.1f} min, engine {args.engine}, model {args.model}")
    print()
    print("| request | sent | outcomes |")
    print("|---|---:|---|")
    for kind in ["good", *sorted(k for k in tally.counts if k != "good")]:
        outcomes = ", ".join(f"{outcome}: {n:,}" for outcome, n in sorted(tally.counts[kind].items()))
        print(f"| {kind} | {sum(tally.counts[kind].values()):,} | {outcomes} |")
    print()
    latencies = sorted(tally.good_seconds)
    if latencies:
        median, p95 = latencies[len(latencies) // 2], latencies[int(0.95 * (len(latencies) - 1))]
        answered = f"{good['answered']:,} of {sum(good.values()):,} answered"
        print(f"good requests: {answered}; latency median {median:.1f} s, p95 {p95:.1f} s")
    start, warmed, end = (rss / 2**20 for rss in (samples[0][1], warm[0], samples[-1][1]))
    peak = max(rss for _, rss in samples) / 2**20
    print(
        f"server RSS: {start:.0f} MiB at the start, {warmed:.0f} MiB after the warm-up, {end:.0f} MiB at the end "
        f"(growth after warm-up {end - warmed:+.1f} MiB, peak {peak:.0f} MiB)"
    )
    print(
        f"server log: {len(log_text.splitlines())} lines, {tracebacks} tracebacks ({log_path}); still serving: {alive}"
    )
    broken = [
        k for k, c in tally.counts.items() for outcome in c if "not a well-formed" in outcome or "no reply" in outcome
    ]
    unanswered = sum(good.values()) - good["answered"]
    print(f"contract: {'held' if not broken and not unanswered and not tracebacks and alive else 'BROKEN'}")


if __name__ == "__main__":
    main()
