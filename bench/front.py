"""Kamailio with Passerelle's front configuration (config/kamailio/kamailio.cfg), for the tests and the cluster
benchmark: the command line that runs it on one address in front of given nodes."""

from __future__ import annotations

import shutil
from pathlib import Path

CONFIG = Path(__file__).parents[1] / "config" / "kamailio" / "kamailio.cfg"
CALLER = Path(__file__).with_name("sipp") / "front_caller.xml"  # a caller that follows the front's Record-Route


def kamailio_command(folder: Path, port: int, nodes: list[str], *extra: str) -> list[str]:
    """``kamailio`` listening on 127.0.0.1:``port``, dispatching to ``nodes`` (host:port), its files in ``folder``;
    ``extra``: "-c" to check, "-DD", "-E" to run in the foreground logging to stderr."""
    kamailio = shutil.which("kamailio")
    if kamailio is None:
        raise FileNotFoundError("kamailio is not installed (scripts/test.sh installs it)")
    listing = folder / "nodes.list"
    listing.write_text("".join(f"1 sip:{node}\n" for node in nodes))
    return [kamailio, "-f", str(CONFIG), "-A", f"LISTEN=udp:127.0.0.1:{port}",
            "-A", f'DISPATCHER_LIST="{listing}"', "-A", f'CTL_SOCKET="unix:{folder / "ctl"}"',
            "-Y", str(folder), "-P", str(folder / "kamailio.pid"), "-m", "32", "-M", "8", *extra]  # fmt: skip
