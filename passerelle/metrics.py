"""``GET /metrics`` for Prometheus, on a local address (``control.metrics``; off when empty).

Everything is read when Prometheus asks, from what the service already keeps (the engine's legs and tick times, the
media clock's counts, the gateway's refusals, the lobby, the phones' lines, Janus), never counted again in the media
path; the outbox's counts are one grouped query, run in a thread. No label carries a name, a number, an address or
a conference id: legs by kind, calls by where they are, refusals by reason, lines by their word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.callflow import Lobby
from bridge.engine import Engine, TickTimes
from bridge.sip.gateway import SipGateway
from config import HostPort

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LINES = ("good", "weak", "poor")


class ServiceCollector(Collector):
    """The service's figures, as metric families, at each scrape."""

    def __init__(
        self,
        engine: Engine,
        gateway: SipGateway | None = None,
        lobby: Lobby | None = None,
        janus_up: Callable[[], bool] | None = None,
        sign_ins: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.engine, self.gateway, self.lobby, self.janus_up = engine, gateway, lobby, janus_up
        self.sign_ins = sign_ins
        self.outbox: dict[str, int] = {}  # the last counts read (refresh_outbox), by state

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        occupancy = engine.occupancy()
        calls = GaugeMetricFamily("passerelle_legs_in", "Legs by where they are: a room, a lobby, the voice menu",
                                  labels=["place"])  # fmt: skip
        for place, key in (("room", "legs_in_rooms"), ("lobby", "legs_in_lobbies"), ("ivr", "legs_in_ivr")):
            calls.add_metric([place], occupancy[key])
        yield calls
        kinds = GaugeMetricFamily("passerelle_legs", "Legs in the media engine by kind", labels=["kind"])
        for kind, count in sorted(engine.kinds().items()):
            kinds.add_metric([kind], count)
        yield kinds
        yield GaugeMetricFamily("passerelle_rooms", "Rooms with someone in", value=occupancy["rooms"])
        if self.lobby is not None:
            yield GaugeMetricFamily("passerelle_lobby_waiting", "Callers waiting in a lobby",
                                    value=len(self.lobby.waiting))  # fmt: skip
        yield _histogram("passerelle_media_tick_seconds", "How long each 20 ms tick of the media clock took",
                         engine.tick_times)  # fmt: skip
        clock = engine.clock.stats if engine.clock is not None else None
        ticks, late, skipped = (clock.ticks, clock.late, clock.skipped) if clock is not None else (0, 0, 0)
        for name, doc, value in (
            ("passerelle_media_ticks", "Ticks of the media clock", ticks),
            ("passerelle_media_late_ticks", "Ticks that began more than 5 ms after their time", late),
            ("passerelle_media_skipped_ticks", "Ticks passed over after a stall", skipped),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        lines = engine.lines()
        words = GaugeMetricFamily("passerelle_phone_lines", "Phone calls by their line's quality (RTCP, both ways)",
                                  labels=["line"])  # fmt: skip
        for word in LINES:
            words.add_metric([word], sum(1 for line in lines if line.get("line") == word))
        yield words
        yield from _line_figures(lines)
        if self.gateway is not None:
            refused = CounterMetricFamily("passerelle_dial_in_refusals", "Calls refused or not let in, by reason",
                                          labels=["reason"])  # fmt: skip
            for reason, count in sorted(self.gateway.refusals.items()):
                refused.add_metric([reason], count)
            yield refused
        if self.outbox:
            queue = GaugeMetricFamily("passerelle_outbox_messages", "Invitations in the outbox by state",
                                      labels=["state"])  # fmt: skip
            for state, count in sorted(self.outbox.items()):
                queue.add_metric([state], count)
            yield queue
        if self.sign_ins is not None:
            signed = CounterMetricFamily("passerelle_sign_ins", "Password sign-ins by result", labels=["result"])
            for result, count in sorted(self.sign_ins().items()):
                signed.add_metric([result], count)
            yield signed
        if self.janus_up is not None:
            yield GaugeMetricFamily("passerelle_janus_up", "1 when Janus (video) is connected",
                                    value=1 if self.janus_up() else 0)  # fmt: skip


def _histogram(name: str, doc: str, times: TickTimes) -> HistogramMetricFamily:
    cumulative, buckets = 0, []
    for bound, count in zip((*map(str, TickTimes.BOUNDS), "+Inf"), times.counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=times.total_s)


def _line_figures(lines: list[dict[str, Any]]) -> Iterator[Metric]:
    """The phone calls' worst and average figures now: loss (both ways), jitter (both ways), round trip, MOS."""
    for name, doc, keys in (
        ("passerelle_phone_loss_ratio", "Packet loss of phone calls, the worse way, last report",
         ("loss_in", "loss_out")),
        ("passerelle_phone_jitter_seconds", "Interarrival jitter of phone calls, the worse way",
         ("jitter_in_ms", "jitter_out_ms")),
        ("passerelle_phone_rtt_seconds", "Round trip of phone calls (RTCP)", ("rtt_ms",)),
        ("passerelle_phone_mos", "Listening quality of phone calls, estimated (simplified E-model)", ("mos",)),
    ):  # fmt: skip
        scale = 0.001 if name.endswith("_seconds") else 1.0
        values = []
        for line in lines:
            known = [line[k] for k in keys if line.get(k) is not None]
            if known:
                values.append(max(known) * scale)
        family = GaugeMetricFamily(name, doc, labels=["of"])
        if values:  # the worst is the highest, but the lowest for a MOS
            family.add_metric(["min" if name.endswith("_mos") else "max"],
                              min(values) if name.endswith("_mos") else max(values))  # fmt: skip
            family.add_metric(["mean"], sum(values) / len(values))
        yield family


async def start(
    listen: HostPort, collector: ServiceCollector, outbox_counts: Callable[[], dict[str, int]] | None = None
) -> web.AppRunner:
    """Serves ``GET /metrics`` on ``listen`` (a local address: nothing in it is for the public)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    async def metrics(_: web.Request) -> web.Response:
        if outbox_counts is not None:
            try:
                collector.outbox = await asyncio.to_thread(outbox_counts)
            except Exception:  # the database away: the rest is still worth reading
                log.warning("metrics: the outbox could not be counted", exc_info=True)
                collector.outbox = {}
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    log.info("metrics for Prometheus on http://%s/metrics", listen)
    return runner
