"""config/systemd/passerelle.service: systemd's own checks pass (verify, with the real `passerelle` in place of the
installed path) and its exposure rating is low; its hardening, real-time limits and drain are there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.tools import require

UNIT = Path(__file__).parents[2] / "config" / "systemd" / "passerelle.service"


def installed(tmp_path: Path) -> Path:
    """The unit as installed, its commands pointing at this checkout's `passerelle`."""
    unit = tmp_path / "passerelle.service"
    unit.write_text(UNIT.read_text().replace("/opt/passerelle/.venv/bin/passerelle", require("passerelle")))
    return unit


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    done = subprocess.run([require("systemd-analyze"), "verify", str(installed(tmp_path))], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "passerelle.service" in line]
    assert done.returncode == 0, done.stderr
    assert complaints == []


def test_the_unit_s_exposure_is_low_and_its_hardening_is_there(tmp_path: Path) -> None:
    done = subprocess.run([require("systemd-analyze"), "security", "--offline=yes", str(installed(tmp_path))],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    rating = re.search(r"Overall exposure level for passerelle\.service: ([0-9.]+)", done.stdout)
    assert rating is not None, done.stdout[-2000:] + done.stderr
    assert float(rating.group(1)) <= 2.5, done.stdout[-3000:]
    text = UNIT.read_text()
    for line in ("User=passerelle", "ProtectSystem=strict", "NoNewPrivileges=yes", "LimitNICE=-10", "LimitRTPRIO=10",
                 "RestrictRealtime=no", "CapabilityBoundingSet=", "--log-format json serve"):  # fmt: skip
        assert f"\n{line}" in text or f" {line}" in text, line
    assert re.search(r"^ExecStop=\S+passerelle .*drain --wait-s \$\{DRAIN_S\}$", text, re.M)
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    drain = int(re.search(r"^Environment=DRAIN_S=(\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert stop > drain, "systemd would kill the service before its drain's end"
