"""Running the real `fraud serve` in a child process on a free loopback port, for tests and benchmarks.

    with serve_in_subprocess(model_dir, "server.log", "--state", "s.sqlite") as base:   # base URL
        httpx.post(f"{base}/score", ...)

    server = ServerProcess(model_dir, "server.log", "--state", "s.sqlite").start()    # to kill it on purpose
    server.kill()                                                                       # SIGKILL, no clean-up
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path


class ServerProcess:
    """One `fraud serve --model DIR` child process (`url` once `start` returns)."""

    def __init__(self, model_dir: str | Path, log_path: str | Path, *args: str, env: dict | None = None,
                 timeout_s: float = 180):
        self.model_dir, self.log_path, self.args, self.timeout_s = Path(model_dir), Path(log_path), args, timeout_s
        self.env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> ServerProcess:
        """Start the child and wait until GET /health answers.

        A child that exits early, or no answer within `timeout_s` (start-up imports torch: > 60 s was seen on a
        shared 2-core machine), raises RuntimeError with the end of its log.
        """
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", "from fraud.cli import app; app()", "serve",
                                          "--model", str(self.model_dir), "--host", "127.0.0.1", "--port", str(port),
                                          *self.args], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fraud serve exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fraud serve did not answer /health within {self.timeout_s:g} s")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: the process ends at once, as in a crash (no shutdown, no flush)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def serve_in_subprocess(model_dir: str | Path, log_path: str | Path, *args: str, timeout_s: float = 180,
                        env: dict | None = None):
    """Run `fraud serve --model DIR ARGS` on a free loopback port; yield its base URL, stop it on exit."""
    server = ServerProcess(model_dir, log_path, *args, env=env, timeout_s=timeout_s)
    try:
        yield server.start().url
    finally:
        server.stop()
