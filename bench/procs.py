"""Servers the bench starts: one process each, on a free loopback port, always stopped.

Every server is registered when started and stopped by its own pid on the way out: at the end
of its phase, at exit (atexit), on Ctrl-C (KeyboardInterrupt unwinds through `finally`) and on
SIGTERM/SIGHUP (turned into SystemExit). On Linux the child also asks the kernel for SIGTERM
should the bench itself die without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    _RUNNING.pop(proc.pid, None)


def stop_all() -> None:
    for proc in list(_RUNNING.values()):
        _terminate(proc)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C does, so every `finally` stops its servers."""

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)
    # Even when started with SIGINT ignored (a background job), Ctrl-C must stop the bench.
    signal.signal(signal.SIGINT, signal.default_int_handler)


atexit.register(stop_all)


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def peak_rss_kib(self) -> int | None:
        """The process's peak resident set (VmHWM) so far, in KiB."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return None

    def stop(self) -> None:
        _terminate(self.proc)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    """True once `url` answers 200; False if the process died first."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def start_server(
    name: str,
    argv: Callable[[int], list[str]],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Server:
    """Start `argv(port)` on a free port and wait for GET /healthz (three ports are tried)."""
    log = log_dir / f"{name}.log"
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), child_env.get("PYTHONPATH", "")) if p
    )
    for _attempt in range(3):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv(port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=child_env,
                start_new_session=True,  # Ctrl-C reaches the bench, which stops it in order
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        _RUNNING[proc.pid] = proc
        try:
            if _wait_ready(proc, f"http://{HOST}:{port}/healthz", timeout):
                return Server(name, port, proc, log)
        except BaseException:
            _terminate(proc)
            raise
        _RUNNING.pop(proc.pid, None)
        if "address already in use" not in _log_tail(log).lower():
            break
    raise RuntimeError(f"{name} did not start; the end of {log}:\n{_log_tail(log)}")


def yilian_argv(database_url: str, workers: int = 1) -> Callable[[int], list[str]]:
    """`yilian serve --db URL --port P [--workers N]` (uvicorn, as in production)."""
    script = Path(sys.executable).parent / "yilian"
    launcher = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from yilian.cli.main import app; app()"]
    )
    return lambda port: [
        *launcher, "serve", "--db", database_url, "--host", HOST, "--port", str(port),
        "--workers", str(workers),
    ]


def bench_app_argv(app: str = "bench.ceiling_app:app") -> Callable[[int], list[str]]:
    """An app of the bench (a ceiling, Yilian with its audit trail off) served as `yilian
    serve` serves Yilian (one worker)."""
    return lambda port: [sys.executable, "-m", "bench.serve_app", app, HOST, str(port)]
