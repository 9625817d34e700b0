"""``passerelle serve``: one process, one asyncio loop, running every part that exists: the store, the media engine
on its 20 ms clock, the SIP dial-in gateway and the web site (today its health check)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import uvloop
from aiohttp import web
from sqlalchemy.orm import configure_mappers

from bridge import Engine
from bridge.asterisk import AsteriskDialler
from bridge.callflow import CallFlow, Lobby
from bridge.clock import GcPacer, GcWatch
from bridge.janus import EmbeddedJanus, ExternalJanus
from bridge.janus.rooms import JanusRooms
from bridge.prompts import PromptLibrary
from bridge.sip.gateway import SipGateway
from config import Language, Settings
from config.errors import ConfigError
from mixer import MixerConfig
from notify.outbox import Outbox
from notify.outbox import run as deliver
from passerelle import control, metrics
from rooms.cluster import Cluster
from rooms.dates import load_locale_data
from rooms.db import session_factory
from rooms.passwords import Verifier
from rooms.retention import Retention
from rooms.store import open_rooms
from web import create_app
from web.app import AUTH, LIVE, OUTBOX_WAKEUP, PAGES
from web.live import Live

log = logging.getLogger(__name__)
HEARTBEAT_S = 3.0  # the cluster table's heartbeat: a node silent 10 s is dead (rooms/cluster.py)
GOODBYE_S = 6.0  # the longest the callers' goodbye may take before the media clock stops
OUTBOX_GRACE_S = 3.0  # from the stop: the message in flight may finish within this


async def _serve(settings: Settings, stop: asyncio.Event) -> None:
    prompts = PromptLibrary(settings.prompts.folder, built_in=settings.prompts.built_in)
    rooms, db = await asyncio.to_thread(open_rooms, settings)
    mixer = settings.mixer
    engine = Engine(MixerConfig(sample_rate_hz=mixer.sample_rate_hz, frame_ms=mixer.frame_ms, top_n=mixer.top_n))
    loop = asyncio.get_running_loop()
    lobby = Lobby()
    flow = CallFlow(
        engine=engine, rooms=rooms, prompts=prompts, settings=settings, lobby=lobby,
        now=loop.time,
    )  # fmt: skip
    gateway = SipGateway(settings, flow)
    cluster = _cluster(settings, db)
    flow.cluster, flow.relay = cluster, gateway.relay  # a room mixed on another node: its callers go there
    app = create_app(settings, rooms, engine, lobby)
    app[PAGES].cluster = cluster  # a browser of a room mixed on another node is sent there
    flow.host_present = app[LIVE].host_in  # until-host lobbies open when a host's browser is in the room
    app[LIVE].on_room_end = flow.end_room  # a deleted or ended conference: its callers hear it and are hung up
    app[LIVE].phones = flow  # a host mutes or takes out a caller: it hears so
    flow.on_hand = app[LIVE].phone_hand  # a caller's *9 raises its hand in the room's list
    flow.room_locked = app[LIVE].locked  # a room its host locked takes no new caller
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    media_stop = asyncio.Event()  # after the goodbyes: callers must hear them
    # The collector runs between ticks, in the loop, not in a site thread mid-tick (bench hostile: 25 ms pauses).
    media = asyncio.create_task(engine.run(media_stop, gc_pacer=GcPacer()), name="media clock")
    outbox = asyncio.create_task(
        deliver(Outbox(session_factory(db), settings.retry), settings, stop, wakeup=app[OUTBOX_WAKEUP]), name="outbox"
    )  # invitations waiting to go out by email or SMS
    purging = asyncio.create_task(_purge(Retention(rooms.sessions, settings, rooms.now), settings, stop),
                                  name="retention")  # fmt: skip
    watching = asyncio.create_task(app[LIVE].watch_rooms(stop), name="room watch")  # deletions made elsewhere
    beating = asyncio.create_task(_heartbeat(cluster, gateway, stop), name="cluster heartbeat")
    video = _video(settings, app[LIVE], stop)
    warming: asyncio.Task[None] | None = None
    gc_watch = GcWatch()  # started once the heap is frozen: the collection that freezes it is not the clock's
    local: web.AppRunner | None = None
    exporter: web.AppRunner | None = None
    try:
        dialler = AsteriskDialler(settings, gateway).dial_out if settings.asterisk.ami else gateway.dial_out
        app[LIVE].dialler = dialler  # a host calls a phone into the room
        if settings.control.socket is not None:
            stats = control.media_stats(engine, flow, gc_watch)
            local = await control.start(
                lobby, settings.control.socket, dialler, stats, drain=functools.partial(_drain, gateway)
            )
        if settings.control.metrics is not None:
            janus = app[LIVE]

            def janus_up() -> bool:
                client = janus.janus.client if janus.janus is not None else None
                return client is not None and not client.closed.is_set()

            auth = app[AUTH]
            collector = metrics.ServiceCollector(engine, gateway, lobby, janus_up, lambda: dict(auth.sign_ins))
            counts = Outbox(session_factory(db), settings.retry).counts
            exporter = await metrics.start(settings.control.metrics, collector, counts)
        await asyncio.to_thread(_warm_up, app, settings, prompts)
        await gateway.start()
        # The password workers start beside the rest, not delaying the start.
        warming = asyncio.create_task(_start_password_workers(app[AUTH].verifier), name="password workers")
        listen = settings.http.listen
        await web.TCPSite(runner, listen.host, listen.port).start()
        _favour_media_clock(settings.mixer.realtime_priority)
        _freeze_heap()
        gc_watch.start()
        log.info("web site listening on %s (public URL %s)", listen, settings.http.public_base_url)
        await stop.wait()
        log.info("stopping")
    finally:
        stop.set()
        await _wind_down(gateway, flow, app[LIVE], outbox)
        media_stop.set()
        await media
        await purging
        await watching
        await beating
        await video
        if warming is not None:
            await warming
        await gateway.close()
        await runner.cleanup()
        gc_watch.stop()
        if local is not None:
            await local.cleanup()
        if exporter is not None:
            await exporter.cleanup()
        db.dispose()


def _cluster(settings: Settings, db: Any) -> Cluster:
    """This node in the cluster table: its name (the host's and the SIP port by default) and where its peers reach
    its SIP side and browsers its site."""
    listen = settings.sip.listen
    name = settings.cluster.node or f"{socket.gethostname()}-{listen.port}"[:64]
    return Cluster(session_factory(db), name, settings.cluster.sip_address or str(listen),
                   settings.http.public_base_url)  # fmt: skip


async def _heartbeat(cluster: Cluster, gateway: SipGateway, stop: asyncio.Event) -> None:
    """Alive every HEARTBEAT_S (and draining when the gateway is); at the stop, this node and its rooms' homes go."""
    while not stop.is_set():
        cluster.draining = gateway.draining
        try:
            await asyncio.to_thread(cluster.heartbeat)
        except Exception:  # the database away for a moment: the next beat will tell
            log.warning("cluster: heartbeat not written", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEARTBEAT_S)
    try:
        await asyncio.to_thread(cluster.leave)
    except Exception:
        log.warning("cluster: this node's leaving not written (its rooms are free once it is taken for dead)",
                    exc_info=True)  # fmt: skip


def _video(settings: Settings, live: Live, stop: asyncio.Event) -> asyncio.Task[None]:
    """Janus for the cameras: its own child (restarted if it dies) or the operator's (reconnected); its rooms are
    made again whenever it is back. Without it the audio carries on: a missing `janus` is said, not fatal."""
    rooms = live.janus = JanusRooms()
    rooms.restarted = live.janus_restarted  # the pages publish and watch again
    rooms.on_event = live.janus_event  # a camera is up: the others may watch it
    path = settings.video.janus_socket
    janus = ExternalJanus(path, rooms.ready) if path is not None else EmbeddedJanus(settings, rooms.ready)

    async def supervise() -> None:
        try:
            await janus.run(stop)
        except ConfigError as exc:
            log.error("no video: %s", exc)

    return asyncio.create_task(supervise(), name="janus")


def _drain(gateway: SipGateway) -> None:
    if not gateway.draining:
        log.info("draining: new calls refused, the calls in progress go on")
    gateway.draining = True


async def _wind_down(gateway: SipGateway, flow: CallFlow, live: Live, outbox: asyncio.Task[None]) -> None:
    """A stop (SIGTERM, Ctrl-C) in a few seconds: new calls refused at once; callers hear "the service is restarting,
    please call again" and get a BYE; browsers are told and reconnect by themselves; the outbox finishes the message
    it is sending if it can within OUTBOX_GRACE_S, else it is interrupted (not marked sent: tried again later)."""
    started = time.monotonic()
    gateway.draining = True
    try:
        await asyncio.wait_for(asyncio.gather(flow.take_everyone_out("restarting"), live.restarting()), GOODBYE_S)
    except TimeoutError:
        log.warning("stopping: the goodbyes took longer than %.0f s", GOODBYE_S)
    try:
        await asyncio.wait_for(asyncio.shield(outbox), max(0.5, OUTBOX_GRACE_S - (time.monotonic() - started)))
    except TimeoutError:
        log.info("stopping: the outbox's message in flight is interrupted (it will be sent later)")
        outbox.cancel()
        await asyncio.wait({outbox}, timeout=1.0)  # an SMTP client may linger closing a silent connection
    log.info("stopping: calls and browsers told in %.1f s", time.monotonic() - started)


def _warm_up(app: web.Application, settings: Settings, prompts: PromptLibrary) -> None:
    """What the first requests would otherwise do beside the media clock, done before the service takes any (and
    so frozen with the rest of the heap): the site's templates compiled, Babel's locale data read, SQLAlchemy's
    mappers configured (bench hostile: late ticks under the site's first sign-ins); the prompts converted for
    phones."""
    started = time.monotonic()
    templates = app[PAGES].compile_templates()
    load_locale_data([language.value for language in Language], settings.locale.timezone)
    configure_mappers()
    loaded = prompts.preload(8000)  # G.711 phones, most calls; G.722 and Opus callers convert theirs on first use
    log.info("site warmed up in %.2f s (%d templates, %d prompts)", time.monotonic() - started, templates, loaded)


async def _start_password_workers(verifier: Verifier) -> None:
    """The sign-in's password workers started before the first sign-in needs them."""
    try:
        await asyncio.to_thread(verifier.warm)
    except Exception:  # the first sign-in starts them again, and says why if it cannot
        log.exception("passwords: the checking workers did not start")


async def _purge(retention: Retention, settings: Settings, stop: asyncio.Event) -> None:
    """Personal data past its retention goes at start, then every retention.purge_every_min."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(retention.purge)
        except Exception:  # the next round tries again; the service goes on
            log.exception("retention: the purge failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.retention.purge_every_min * 60)


def _favour_media_clock(realtime_priority: int) -> str:
    """Run this thread (the event loop, so the media clock) ahead of everything else on the machine: the kernel's
    round-robin real-time policy at ``realtime_priority`` (mixer.realtime_priority), as a telephony server's media
    threads do; else niced to -10. Under either, two busy processes beside the service made late ticks (0.4 % of
    them niced, none real-time; bench hostile, RESULTS.md). SCHED_RESET_ON_FORK: the threads and processes this
    thread starts (the site's workers, the password workers, Janus) get the ordinary policy, not this one. Needs
    CAP_SYS_NICE (root, or systemd's LimitRTPRIO=/LimitNICE=); without it a warning says so. What was applied."""
    if realtime_priority:
        try:
            policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
            os.sched_setscheduler(0, policy, os.sched_param(realtime_priority))
            log.info("media clock: real-time priority %d (round-robin)", realtime_priority)
            return "realtime"
        except (OSError, AttributeError):  # no privilege (PermissionError), or not Linux
            log.info("media clock: no real-time priority (needs CAP_SYS_NICE or LimitRTPRIO); trying nice -10")
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
    except PermissionError:
        log.warning("cannot raise the media clock's priority (needs CAP_SYS_NICE): ticks may be late under load")
        return "default"
    return "nice"


def _freeze_heap() -> None:
    """What the service holds once started (its modules, the site's routes and templates, the database's metadata,
    the prompts: some 10⁵ objects that live as long as it does) out of the garbage collector's reach: a full
    collection walked them all, some 50 ms during which no thread runs (the media clock skipped two ticks), and
    now walks only what came after."""
    gc.collect()
    gc.freeze()


def serve(settings: Settings) -> int:
    os.umask(0o077)  # var/, the database, the control socket: for the service's own user only
    # The media clock shares the interpreter with the site: a thread rendering a page or reading a large body
    # hands the GIL back within 1 ms rather than Python's default 5 ms (bench hostile: late ticks).
    sys.setswitchinterval(0.001)
    PromptLibrary(settings.prompts.folder, built_in=settings.prompts.built_in).check()  # one line, exit 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await _serve(settings, stop)

    try:
        uvloop.run(main())  # libuv's loop: every browser's packets go through it (bench/RESULTS.md)
    except OSError as exc:  # the listen address is taken or not ours
        log.error("cannot listen on %s: %s", settings.http.listen, exc.strerror)
        return 1
    return 0
