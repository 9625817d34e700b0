"""The real programs the tests drive (SIP phones, SIPp, sox, espeak-ng)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def require(name: str) -> str:
    """The path of ``name``; a failure, not a skip, when it is missing: scripts/test.sh installs every one."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/test.sh installs it)")
    return path


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server_process(command: list[str], port: int, log: Path, what: str) -> Iterator[subprocess.Popen[bytes]]:
    """A server the tests talk to, in its own process: started, waited for until it accepts TCP on ``port``
    (a clear failure if it exits or takes more than 10 s), stopped afterwards. Its output goes to ``log``."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{what} did not start; see {log}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
