"""GET /metrics (passerelle/metrics.py): the engine's legs, rooms, tick times and clock counts, the phones' lines,
the gateway's refusals, the lobby, the outbox and Janus, in Prometheus' text format, with nothing personal in it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bridge import BufferLeg, Engine
from bridge.callflow import Lobby
from bridge.clock import MediaClock
from bridge.leg import LegKind
from config import HostPort
from passerelle import metrics
from tests.bridge.stack import free_port


class Phone(BufferLeg):
    def __init__(self, leg_id: str, figures: dict[str, Any]) -> None:
        super().__init__(leg_id, 8000)
        self.figures = figures

    @property
    def kind(self) -> LegKind:
        return LegKind.SIP

    @property
    def line(self) -> str | None:
        word: str | None = self.figures.get("line")
        return word

    def network(self) -> dict[str, Any]:
        return self.figures


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_the_service_s_figures_in_prometheus_text_with_nothing_personal() -> None:
    engine = Engine()
    engine.clock = MediaClock()
    engine.clock.stats.ticks, engine.clock.stats.late, engine.clock.stats.skipped = 1000, 3, 1
    for seconds in (0.0005, 0.003, 0.003, 0.05):
        engine.tick_times.observe(seconds)
    bad = {"line": "poor", "loss_in": 0.2, "loss_out": 0.01, "jitter_in_ms": 12.0, "jitter_out_ms": None,
           "rtt_ms": 80.0, "mos": 1.8}  # fmt: skip
    good = {"line": "good", "loss_in": 0.0, "loss_out": None, "jitter_in_ms": 2.0, "jitter_out_ms": 4.0,
            "rtt_ms": None, "mos": 4.4}  # fmt: skip
    engine.join("room-1", Phone("sip-1", bad))
    engine.join("room-1", BufferLeg("web-1", 48000))
    engine.join("ivr:sip-2", Phone("sip-2", good))
    engine.labels["sip-1"] = "Jeanne Dupont · 06 •• •• 12 34"
    lobby = Lobby()
    loop = asyncio.new_event_loop()
    lobby.waiting["sip-3"] = ("room-1", loop.create_future())
    loop.close()
    gateway = SimpleNamespace(refusals={"wrong-code": 2, "max-calls": 1})
    collector = metrics.ServiceCollector(engine, gateway, lobby, lambda: True,  # type: ignore[arg-type]
                                         lambda: {"ok": 5, "wrong-password": 2})  # fmt: skip
    collector.outbox = {"pending": 4, "sent": 10, "failed": 1}

    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    got = samples(text)
    assert got[("passerelle_legs_in", (("place", "room"),))] == 2
    assert got[("passerelle_legs_in", (("place", "ivr"),))] == 1
    assert got[("passerelle_legs", (("kind", "sip"),))] == 2
    assert got[("passerelle_legs", (("kind", "local"),))] == 1
    assert got[("passerelle_rooms", ())] == 1
    assert got[("passerelle_lobby_waiting", ())] == 1
    assert got[("passerelle_media_ticks_total", ())] == 1000
    assert got[("passerelle_media_late_ticks_total", ())] == 3
    assert got[("passerelle_media_skipped_ticks_total", ())] == 1
    assert got[("passerelle_media_tick_seconds_bucket", (("le", "0.001"),))] == 1
    assert got[("passerelle_media_tick_seconds_bucket", (("le", "0.004"),))] == 3
    assert got[("passerelle_media_tick_seconds_bucket", (("le", "0.04"),))] == 3
    assert got[("passerelle_media_tick_seconds_bucket", (("le", "+Inf"),))] == 4
    assert got[("passerelle_media_tick_seconds_count", ())] == 4
    assert abs(got[("passerelle_media_tick_seconds_sum", ())] - 0.0565) < 1e-9
    assert got[("passerelle_phone_lines", (("line", "poor"),))] == 1
    assert got[("passerelle_phone_lines", (("line", "good"),))] == 1
    assert got[("passerelle_phone_lines", (("line", "weak"),))] == 0
    assert got[("passerelle_phone_loss_ratio", (("of", "max"),))] == 0.2
    assert got[("passerelle_phone_loss_ratio", (("of", "mean"),))] == 0.1
    assert abs(got[("passerelle_phone_jitter_seconds", (("of", "max"),))] - 0.012) < 1e-9
    assert abs(got[("passerelle_phone_rtt_seconds", (("of", "mean"),))] - 0.08) < 1e-9
    assert got[("passerelle_dial_in_refusals_total", (("reason", "wrong-code"),))] == 2
    assert got[("passerelle_outbox_messages", (("state", "failed"),))] == 1
    assert got[("passerelle_janus_up", ())] == 1
    assert got[("passerelle_phone_mos", (("of", "min"),))] == 1.8
    assert abs(got[("passerelle_phone_mos", (("of", "mean"),))] - 3.1) < 1e-9
    assert got[("passerelle_sign_ins_total", (("result", "wrong-password"),))] == 2
    for personal in ("Jeanne", "Dupont", "•", "room-1", "sip-1"):
        assert personal not in text, personal


def test_the_exporter_answers_on_its_local_address_and_survives_an_outbox_that_fails() -> None:
    def broken() -> dict[str, int]:
        raise OSError("database away")

    async def scenario() -> tuple[int, str, str]:
        engine = Engine()
        port = free_port()
        runner = await metrics.start(HostPort("127.0.0.1", port), metrics.ServiceCollector(engine), broken)
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as response,
            ):
                return response.status, response.headers["Content-Type"], await response.text()
        finally:
            await runner.cleanup()

    status, kind, text = asyncio.run(scenario())
    assert status == 200
    assert kind.startswith("text/plain; version=0.0.4")
    assert "passerelle_media_tick_seconds_bucket" in text
    assert "passerelle_outbox_messages" not in text  # not counted this time, and said in the log
