"""``passerelle serve``'s own Janus: a configuration it writes (only the VideoRoom plugin and the WebSockets
transport loaded, the API on a Unix socket in a folder private to the service's user, no TCP port; ICE addresses
and STUN from ``[webrtc]``, ``[video]``'s UDP port range), the child started, its log read into Passerelle's, and a
restart when it dies: ``on_ready`` runs after every start, so the rooms it held are made again and the pages re-publish.

Janus's own files are in Debian's folders (``janus``'s ``/usr/lib/<arch>/janus``); the configuration folder links
only the two modules used, so nothing else is loaded whatever the package ships."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import sysconfig
from collections.abc import Awaitable, Callable
from pathlib import Path

from bridge.janus.client import JanusClient, JanusError
from config import Settings
from config.errors import ConfigError

log = logging.getLogger("janus")
PLUGINS = ("libjanus_videoroom.so",)
# The WebSockets transport on a Unix socket: the Unix-socket transport (pfunix) drops every message over 8 kB
# (its read buffer), and a page's answer for the cameras it watches is 1.4 kB per camera.
TRANSPORTS = ("libjanus_websockets.so",)
START_S = 10.0  # its socket must appear within this
RESTART_S = (0.5, 1.0, 2.0, 5.0)  # waits before each restart in a row (the last one repeats)
STEADY_S = 30.0  # a Janus up this long resets the series of restarts


def janus_folder() -> Path:
    """Where Debian puts Janus's modules."""
    arch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    return Path("/usr/lib") / arch / "janus"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(settings: Settings, folder: Path) -> Path:
    """Janus's configuration for this service under ``folder`` (made private); returns its API socket's path."""
    modules = janus_folder()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for kind, names in (("plugins", PLUGINS), ("transports", TRANSPORTS)):
        own = folder / kind
        shutil.rmtree(own, ignore_errors=True)
        own.mkdir()
        for name in names:
            source = modules / kind / name
            if not source.exists():
                raise ConfigError(f"video: Janus's {source} is missing (Debian's `janus` package installs it)")
            (own / name).symlink_to(source)
    for empty in ("events", "loggers"):
        (folder / empty).mkdir(exist_ok=True)
    api = folder / "janus-ws.sock"
    webrtc, video = settings.webrtc, settings.video
    nat = ["nice_debug = false", "ignore_mdns = true"]  # half-trickle: its own candidates are in its SDPs
    # Janus never gathers on a loopback interface (ice.c skips IFF_LOOPBACK): those addresses are left out, and
    # with none left it gathers on every other interface (a bridge on 127.0.0.1 still serves this machine's pages).
    usable = [a for a in webrtc.host_addresses if not ipaddress.ip_address(a).is_loopback]
    if usable:
        nat.append(f"ice_enforce_list = {_quote(','.join(usable))}")
    # STUN (the first one) lets Janus learn its public address behind a 1:1 NAT. The TURN servers of [webrtc] are
    # the pages' to use, in their own PeerConnections to Janus: Janus's guide is clear that Janus itself gets no
    # TURN server unless it sits behind a restrictive firewall (it would relay every feed through it).
    for url in webrtc.ice_servers:
        scheme, _, rest = url.partition(":")
        if scheme != "stun":
            continue
        host, _, port = rest.split("?", 1)[0].partition(":")
        nat += [f"stun_server = {_quote(host)}", f"stun_port = {int(port or 3478)}"]
        break
    general = [
        f"configs_folder = {_quote(str(folder))}",
        f"plugins_folder = {_quote(str(folder / 'plugins'))}",
        f"transports_folder = {_quote(str(folder / 'transports'))}",
        f"events_folder = {_quote(str(folder / 'events'))}",
        f"loggers_folder = {_quote(str(folder / 'loggers'))}",
        "debug_level = 4",  # info: what it starts, what fails; read into Passerelle's log
        "debug_timestamps = false",
        "debug_colors = false",
        'server_name = "passerelle-video"',
        "session_timeout = 60",
        "hide_dependencies = true",
        # Handles share one event loop per core instead of a thread each: half the CPU per stream forwarded in a
        # training of 12 (0.07 % of a core against 0.14 %; one loop: the same, but one core at most; 4: 0.12 %).
        f"event_loops = {max(1, os.cpu_count() or 1)}",
    ]
    files = {
        "janus.jcfg": {
            "general": general,
            "certificates": [],  # DTLS: a certificate of its own, made at each start
            "media": [
                "ipv6 = false",
                f'rtp_port_range = "{video.rtp_port_min}-{video.rtp_port_max}"',
                "nack_optimizations = true",
                # Janus says so ("slowlink") when a page loses 4 or more of the packets it sends it in a second:
                # that page's layers go down (Live.janus_event, room-video.js).
                "slowlink_threshold = 4",
            ],
            "nat": nat,
            "plugins": [],
            "transports": [],
            "events": ["broadcast = false"],
        },
        "janus.transport.websockets.jcfg": {
            "general": [
                'json = "compact"',
                "ws = true",
                f"ws_unix = {_quote(str(api))}",
                "wss = false",
                'ws_logging = "err"',
            ],
            "admin": ["admin_ws = false", "admin_wss = false"],
        },
        # Rooms are made by Passerelle through the API, each with its own secret and PIN; none at start.
        "janus.plugin.videoroom.jcfg": {"general": ["string_ids = false", "lock_rtp_forward = true"]},
    }
    for name, sections in files.items():
        text = "".join(f"{section}: {{\n" + "".join(f"\t{line}\n" for line in lines) + "}\n"
                       for section, lines in sections.items())  # fmt: skip
        path = folder / name
        path.write_text(text)
        path.chmod(0o600)
    return api


def _die_with_parent() -> None:
    """In the child, before Janus runs: Linux ends it (SIGTERM) if Passerelle dies, even killed (no orphan)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedJanus:
    """A Janus child of this process, restarted when it dies; ``on_ready(client)`` after each start."""

    def __init__(self, settings: Settings, on_ready: Callable[[JanusClient], Awaitable[None]]) -> None:
        self.settings, self.on_ready = settings, on_ready
        self.folder = settings.video.folder.resolve()
        self.process: asyncio.subprocess.Process | None = None
        self.client: JanusClient | None = None
        self.starts = 0
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        binary = shutil.which("janus")
        if binary is None:
            raise ConfigError("video: `janus` is not installed (Debian's `janus` package; scripts/run.sh installs it)")
        failures = 0
        while not stop.is_set():
            started = asyncio.get_running_loop().time()
            try:
                await self._once(binary, stop)
            except (OSError, ConnectionError, TimeoutError, JanusError) as exc:
                log.warning("Janus could not be started or reached: %s", exc)
            finally:
                await self._end()
            if stop.is_set():
                return
            failures = 0 if asyncio.get_running_loop().time() - started > STEADY_S else failures + 1
            wait = RESTART_S[min(failures, len(RESTART_S) - 1)]
            log.warning("Janus stopped; started again in %.1f s", wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def _once(self, binary: str, stop: asyncio.Event) -> None:
        api = write_config(self.settings, self.folder)
        api.unlink(missing_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            binary, "--configs-folder", str(self.folder), "--config", str(self.folder / "janus.jcfg"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is Passerelle's to handle, not Janus's
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        self.starts += 1
        reading = asyncio.create_task(self._read_log(self.process))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + START_S
            while not api.exists():
                if self.process.returncode is not None or loop.time() > deadline:
                    raise TimeoutError(f"its API socket {api} did not appear")
                await asyncio.sleep(0.05)
            self.client = await JanusClient.open(api)
            await self.on_ready(self.client)
            self.ready.set()
            log.info("Janus %d is up (pid %d)", self.starts, self.process.pid)
            waits = {asyncio.create_task(stop.wait()), asyncio.create_task(self.process.wait()),
                     asyncio.create_task(self.client.closed.wait())}  # fmt: skip
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            self.ready.clear()
            await asyncio.wait({reading}, timeout=1.0)
            reading.cancel()

    async def _end(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            if process is not None:
                log.warning("Janus exited with code %s", process.returncode)
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    @staticmethod
    async def _read_log(process: asyncio.subprocess.Process) -> None:
        """Janus's lines into Passerelle's log: its errors and warnings as such, the rest at debug level."""
        if process.stdout is None:
            return
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            if "[ERR]" in line:
                log.error("%s", line)
            elif "[WARN]" in line:
                log.warning("%s", line)
            else:
                log.debug("%s", line)


class ExternalJanus:
    """An operator's Janus (``[video] janus_socket``): connected to, and again after it restarts or the link
    breaks (every RESTART_S[-1] seconds); ``on_ready(client)`` after each connection, as for the embedded one."""

    def __init__(self, socket_path: Path, on_ready: Callable[[JanusClient], Awaitable[None]]) -> None:
        self.socket_path, self.on_ready = socket_path, on_ready
        self.client: JanusClient | None = None
        self.starts = 0
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        told = False
        while not stop.is_set():
            try:
                self.client = await JanusClient.open(self.socket_path)
                await self.on_ready(self.client)
            except (OSError, ConnectionError, TimeoutError, JanusError) as exc:
                if not told:
                    log.warning("the operator's Janus at %s cannot be reached: %s", self.socket_path, exc)
                    told = True
            else:
                told = False
                self.starts += 1
                self.ready.set()
                log.info("connected to the operator's Janus at %s", self.socket_path)
                waits = {asyncio.create_task(stop.wait()), asyncio.create_task(self.client.closed.wait())}
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                self.ready.clear()
            if self.client is not None:
                await self.client.close()
                self.client = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RESTART_S[-1])
