"""Stopping cleanly, with real phones and a slow SMTP server: on SIGTERM a caller in a room hears that the service
is restarting and gets a BYE, a new call is refused, the outbox's message in flight is interrupted (still to send,
never marked sent) and the whole stop takes under 10 s."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from config import load_settings
from notify.invitations import Invitations
from notify.outbox import Outbox
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory
from rooms.models import OutboxMessage, OutboxState
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port as free_udp_port
from tests.mixer.signals import tone
from tests.web.site import serving


class SlowSmtp:
    """Greets, then never answers: a mail server that hangs mid-conversation."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.sendall(b"220 slow.example ESMTP\r\n")
            self.connections.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self.server.close()
        for conn in self.connections:
            conn.close()


@pytest.mark.e2e
def test_sigterm_says_goodbye_refuses_new_calls_and_stops_within_10_s(tmp_path: Path) -> None:
    smtp = SlowSmtp()
    phone = Phone(tmp_path / "a", free_udp_port(), free_udp_port(), 36600, tone(700, 8000 * 60, 8000, rate=8000))
    late = Phone(tmp_path / "b", free_udp_port(), free_udp_port(), 36800, tone(900, 8000 * 60, 8000, rate=8000))
    try:
        with serving(tmp_path, PASSERELLE_EMAIL__SMTP=f"127.0.0.1:{smtp.port}", PASSERELLE_EMAIL__SECURITY="none",
                     PASSERELLE_EMAIL__TIMEOUT_S="60") as site:  # fmt: skip
            settings = load_settings(environ=site.env)
            db = make_engine(settings.database.url.reveal())
            rooms = Rooms(settings, session_factory(db))
            conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
            invitee = rooms.add_invitee(conference.id, "email", "anne.petit@example.org", send_now=False)
            Invitations(settings, rooms, Outbox(rooms.sessions, settings.retry)).send(conference, [invitee])
            deadline = time.monotonic() + 15
            while not smtp.connections and time.monotonic() < deadline:  # the worker is sending it, and hangs
                time.sleep(0.2)
            assert smtp.connections, "the outbox never reached the SMTP server"
            phone.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(1.5)
            phone.command("sndcode", conference.code + "#")
            time.sleep(4.0)
            assert phone.in_call()
            assert site.process is not None
            site.process.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            time.sleep(0.3)
            late.command("dial", f"sip:+33491000000@{site.sip}")
            site.process.wait(timeout=30)
            took = time.monotonic() - stopped_at
            status = site.process.returncode
            log = (tmp_path / "serve.log").read_text()
            with session_factory(db)() as s:
                message = s.scalars(select(OutboxMessage)).one()
            db.dispose()
            phone_in_call, late_in_call = phone.in_call(), late.in_call()
    finally:
        phone.stop()
        late.stop()
        smtp.close()
    assert took < 10.0, f"the stop took {took:.1f} s"
    assert status == 0, log[-2000:]
    assert "stopping: 1 callers told" in log, "the caller in the room was not told"
    assert "a call refused: the service is stopping" in log, "a call placed while stopping was not refused"
    assert not phone_in_call, "the caller did not get a BYE"
    assert not late_in_call
    refused = (tmp_path / "b" / "baresip.log").read_text()
    assert re.search(r"\b503 Service Unavailable", refused), "the call placed while stopping is told 503"
    assert message.state is OutboxState.PENDING, "the interrupted message is to be sent again"
    assert message.sent_at is None
    assert "Traceback" not in log
    json.dumps({"took_s": round(took, 1)})  # the figure, for the note


@pytest.mark.e2e
def test_a_phone_only_room_deleted_from_the_command_line_is_emptied(tmp_path: Path) -> None:
    """No browser watches this room: the service's own look at its rooms finds the deletion another process made."""
    import subprocess

    from tests.tools import require

    phone = Phone(tmp_path / "a", free_udp_port(), free_udp_port(), 37000, tone(700, 8000 * 60, 8000, rate=8000))
    try:
        with serving(tmp_path) as site:
            conference = site.conference("--lobby", "off")
            phone.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(1.5)
            phone.command("sndcode", conference["code"] + "#")
            time.sleep(4.0)
            assert phone.in_call()
            subprocess.run([require("passerelle"), "conference", "delete", conference["id"]], env=site.env,
                           cwd=site.folder, capture_output=True, timeout=30, check=True)  # fmt: skip
            deleted_at, hung_up = time.monotonic(), None
            while time.monotonic() - deleted_at < 15:
                if not phone.in_call():
                    hung_up = time.monotonic() - deleted_at
                    break
                time.sleep(0.2)
    finally:
        phone.stop()
    assert hung_up is not None, "the phone stayed in a deleted conference"
    assert hung_up < 12


@pytest.mark.e2e
def test_drain_refuses_new_calls_and_the_front_s_probe_and_returns_once_the_last_call_ends(tmp_path: Path) -> None:
    """`passerelle drain` (the systemd unit's ExecStop): a new call is refused (503), an OPTIONS probe (the SIP
    front's) gets 503, the caller in a room stays in its call; once it hangs up the drain returns at once."""
    import subprocess

    from tests.tools import require

    sipp = require("sipp")
    options = Path(__file__).parents[1] / "bridge" / "sipp" / "options.xml"
    phone = Phone(tmp_path / "a", free_udp_port(), free_udp_port(), 37200, tone(700, 8000 * 60, 8000, rate=8000))
    late = Phone(tmp_path / "b", free_udp_port(), free_udp_port(), 37400, tone(900, 8000 * 60, 8000, rate=8000))
    try:
        with serving(tmp_path) as site:
            conference = site.conference("--lobby", "off")
            probe = [sipp, site.sip, "-sf", str(options), "-m", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
                     "-nostdin", "-timeout", "10s"]  # fmt: skip
            before = subprocess.run(probe, cwd=tmp_path, capture_output=True, timeout=30)
            phone.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(1.5)
            phone.command("sndcode", conference["code"] + "#")
            time.sleep(4.0)
            assert phone.in_call()
            pipe = subprocess.PIPE
            drain = subprocess.Popen([require("passerelle"), "drain", "--wait-s", "60"], env=site.env,
                                     cwd=site.folder, stdout=pipe, stderr=pipe, text=True)  # fmt: skip
            time.sleep(2.0)
            during = subprocess.run(probe, cwd=tmp_path, capture_output=True, timeout=30)
            late.command("dial", f"sip:+33491000000@{site.sip}")
            time.sleep(2.0)
            still_draining, phone_in_call, late_in_call = drain.poll() is None, phone.in_call(), late.in_call()
            phone.command("hangup")
            hung_up = time.monotonic()
            out, err = drain.communicate(timeout=30)
            took = time.monotonic() - hung_up
            serving_still = site.process is not None and site.process.poll() is None
    finally:
        phone.stop()
        late.stop()
    assert before.returncode == 0, "the probe failed before the drain"
    assert during.returncode != 0, "the probe got 200 while draining"
    assert still_draining, f"drain returned with a call in progress: {out}{err}"
    assert phone_in_call, "the call in progress was cut by the drain"
    assert not late_in_call
    assert re.search(r"\b503 Service Unavailable", (tmp_path / "b" / "baresip.log").read_text())
    assert drain.returncode == 0, err
    assert out.strip() == "drained: no call in progress"
    assert took < 5.0, f"the drain returned {took:.1f} s after the last call"
    assert serving_still, "drain stops nothing by itself: the stop is systemd's (or a SIGTERM's) to do"
