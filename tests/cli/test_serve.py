"""The real ``passerelle`` console script, as an operator runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.tools import require

PASSERELLE = shutil.which("passerelle")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSERELLE_")}
    return env | {"PASSERELLE_DATABASE__URL": f"sqlite:///{tmp_path / 'var' / 'db.sqlite3'}"} | extra


@pytest.fixture
def passerelle() -> str:
    if PASSERELLE is None:
        pytest.fail("the passerelle console script is not installed (run scripts/test.sh)")
    return PASSERELLE


@pytest.mark.e2e
def test_serve_upgrades_embedded_database_answers_health_and_stops(tmp_path: Path, passerelle: str) -> None:
    port = free_port()
    env = env_for(
        tmp_path, PASSERELLE_HTTP__LISTEN=f"127.0.0.1:{port}", PASSERELLE_SIP__LISTEN=f"127.0.0.1:{free_port()}"
    )
    proc = subprocess.Popen([passerelle, "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    body = json.loads(response.read())
            except OSError:
                assert proc.poll() is None, "serve exited early"
                time.sleep(0.2)
        assert body is not None, "no answer from /healthz"
        assert body["status"] == "ok"
        assert body["database"] == "ok"
        if os.geteuid() == 0:  # allowed to: the event loop (the media clock) runs ahead of everything else
            policy = os.sched_getscheduler(proc.pid)
            assert policy & ~os.SCHED_RESET_ON_FORK == os.SCHED_RR
            assert policy & os.SCHED_RESET_ON_FORK, "threads and children it starts must not inherit it"
            others = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task") if int(t) != proc.pid]
            assert others, "the service runs threads beside its loop"
            for tid in others:  # the site's workers and the rest: ordinary threads
                with contextlib.suppress(ProcessLookupError):
                    assert os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_OTHER
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "web site listening on 127.0.0.1" in err
        assert re.search(r"site warmed up in [0-9.]+ s \(\d+ templates, \d+ prompts\)", err)
        assert "SIP gateway listening on 127.0.0.1" in err
        assert "alembic" not in err, "the migration tool's own lines are not the operator's business"
        assert err.count("database schema") == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "var").iterdir()}
    assert modes["db.sqlite3"] == 0o600
    assert modes.pop("janus") == 0o700  # Janus's configuration (a TURN password may be in it) and API socket
    assert set(modes.values()) == {0o600}, modes
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'db.sqlite3'}")
    assert {"users", "conferences", "dial_codes", "invitees", "audit_events"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_the_media_clock_thread_is_favoured_and_passes_nothing_on() -> None:
    """Real-time (round-robin) when allowed, nice -10 when only that is, else said; never handed to the threads
    the clock's thread starts afterwards (SCHED_RESET_ON_FORK)."""
    import threading

    from passerelle.serve import _favour_media_clock

    seen: dict[str, object] = {}

    def favoured(priority: int) -> None:
        seen["applied"] = _favour_media_clock(priority)
        seen["policy"] = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = threading.Thread(target=lambda: seen.update(
            child_policy=os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK,
            child_nice=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))  # fmt: skip
        child.start()
        child.join()

    for priority in (10, 0):
        thread = threading.Thread(target=favoured, args=(priority,))  # its own thread: the policy is per thread
        thread.start()
        thread.join()
        if os.geteuid() != 0:
            assert seen["applied"] in ("default", "nice")
            continue
        if priority:
            assert seen["applied"] == "realtime"
            assert seen["policy"] == os.SCHED_RR
            assert seen["child_policy"] == os.SCHED_OTHER
            assert seen["child_nice"] == 0
        else:
            assert seen["applied"] == "nice"
            assert seen["policy"] == os.SCHED_OTHER
            assert seen["nice"] == -10


@pytest.mark.e2e
def test_serve_port_taken_fails_clearly(tmp_path: Path, passerelle: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = env_for(
            tmp_path, PASSERELLE_HTTP__LISTEN=f"127.0.0.1:{port}", PASSERELLE_SIP__LISTEN=f"127.0.0.1:{free_port()}"
        )
        proc = subprocess.run([passerelle, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


@pytest.mark.e2e
def test_serve_without_voice_prompts_refuses_to_start_in_one_line(tmp_path: Path, passerelle: str) -> None:
    """Installed with pip alone, no prompt was made: say how to make them rather than answer calls with silence."""
    (tmp_path / "prompts").mkdir()  # a clinic's folder without recordings, the built-in voice refused
    env = env_for(tmp_path, PASSERELLE_PROMPTS__FOLDER=str(tmp_path / "prompts"),
                  PASSERELLE_PROMPTS__BUILT_IN="false", PASSERELLE_HTTP__LISTEN=f"127.0.0.1:{free_port()}",
                  PASSERELLE_SIP__LISTEN=f"127.0.0.1:{free_port()}")  # fmt: skip
    proc = subprocess.run([passerelle, "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("passerelle: error: voice prompts missing"), proc.stderr
    assert "scripts/make_prompts.py" in lines[-1]
    assert "Traceback" not in proc.stderr


def test_console_script_bad_arguments_write_nothing(tmp_path: Path, passerelle: str) -> None:
    proc = subprocess.run(
        [passerelle, "conference", "create", "--name", "X", "--start", "2026-12-01T09:00"],
        env=env_for(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "passerelle: error: --start and --end go together (or give --open, the default)\n"
    assert not (tmp_path / "var").exists()


@pytest.mark.postgres
def test_console_script_postgres_schema_must_be_upgraded(
    postgres_schema_url: str, tmp_path: Path, passerelle: str
) -> None:
    env = env_for(tmp_path, PASSERELLE_DATABASE__URL=postgres_schema_url)
    listing = [passerelle, "conference", "list"]
    proc = subprocess.run(listing, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "run `passerelle db upgrade`" in proc.stderr
    upgraded = subprocess.run([passerelle, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    assert subprocess.run(listing, env=env, capture_output=True, text=True, timeout=60).returncode == 0


def _janus_pid(log: Path, deadline_s: float = 20) -> int:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = re.search(r"Janus 1 is up \(pid (\d+)\)", log.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.2)
    raise AssertionError(f"no Janus came up: {log.read_text()[-2000:]}")


def _gone(pid: int, within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    return False


@pytest.mark.e2e
def test_serve_runs_its_janus_and_leaves_none_behind_even_when_killed(tmp_path: Path, passerelle: str) -> None:
    require("janus")
    env = env_for(tmp_path, PASSERELLE_HTTP__LISTEN=f"127.0.0.1:{free_port()}",
                  PASSERELLE_SIP__LISTEN=f"127.0.0.1:{free_port()}")  # fmt: skip
    log = tmp_path / "serve.log"
    for how in (signal.SIGTERM, signal.SIGKILL):
        with log.open("w") as out:
            proc = subprocess.Popen([passerelle, "serve"], env=env, cwd=tmp_path, stderr=out)
        try:
            pid = _janus_pid(log)
            assert (tmp_path / "var" / "janus" / "janus-ws.sock").exists()
            proc.send_signal(how)
            proc.wait(timeout=20)
            assert _gone(pid), f"Janus {pid} outlived passerelle serve ({how.name})"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
