"""HTTP load generators for the serving benchmark: `wrk` when present, else a plain asyncio client.

`wrk` (C, epoll) costs a few µs per request, so on a 2-core machine it leaves the cores to
the servers under test; a Python client costs far more and caps what it can measure, which
is why results record which generator produced them. Both keep `connections` keep-alive
connections busy for `seconds` and report req/s, p50/p99 latency and errors (connection
errors, timeouts and non-2xx answers).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

_LUA = """
wrk.method = "POST"
{headers}{close}local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT p50_us=%d p99_us=%d\\n", latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str | None:
    """The wrk binary; installs Debian's package when running as root with apt-get, else None."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, timeout=300,
                   env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}, **quiet)
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, body: bytes, *, connections: int, seconds: float, close: bool = False,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    """`close`: a new connection per request (`Connection: close`) instead of keep-alive; `headers` replace the
    default `Content-Type: application/json` (a binary V2 body names its JSON header's length in one)."""
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.json"
        body_path.write_bytes(body)
        script = Path(tmp) / "post.lua"
        header = 'wrk.headers["Connection"] = "close"\n' if close else ""
        lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in _headers(headers).items())
        script.write_text(_LUA.replace("{body}", str(body_path)).replace("{close}", header).replace("{headers}", lines))
        threads = min(2, connections)
        out = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                              "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60)
    text = out.stdout
    if out.returncode != 0 or "Requests/sec" not in text:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-500:]}{text[-500:]}")
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = (sum(int(x) for x in socket.groups()) if socket else 0) + (int(non_2xx.group(1)) if non_2xx else 0)
    result = re.search(r"RESULT p50_us=(\d+) p99_us=(\d+)", text)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), "requests": requests,
            "p50_ms": int(result.group(1)) / 1000, "p99_ms": int(result.group(2)) / 1000, "errors": errors}


def _headers(headers: dict[str, str] | None) -> dict[str, str]:
    return headers if headers is not None else {"Content-Type": "application/json"}


def run_python(url: str, body: bytes, *, connections: int, seconds: float, close: bool = False,
               headers: dict[str, str] | None = None) -> dict[str, Any]:
    return asyncio.run(_python_load(url, body, connections, seconds, close, _headers(headers)))


async def _python_load(url: str, body: bytes, connections: int, seconds: float, close: bool,
                       headers: dict[str, str]) -> dict[str, Any]:
    match = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    assert match, url
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    fields = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{fields}"
               f"{'Connection: close' + chr(13) + chr(10) if close else ''}Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        sent = 0
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if close and sent:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                sent += 1
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not status_line.startswith(b"HTTP/1.1 2"):
                    errors += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (lambda q: 0.0)
    return {"rps": len(latencies) / elapsed, "requests": len(latencies), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
            "errors": errors}
