"""One room, two nodes sharing one database: a caller of node A has the room mixed there; a caller of node B, whose
room is mixed on A, is taken there (B calls A with a moved caller's link and relays the audio), and the two hear
each other; when both have hung up the room's home is released. Real baresip phones, RFC 4733 codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rooms import ConferenceDraft
from rooms.cluster import Cluster, Home
from tests.bridge.phones import Phone
from tests.bridge.stack import Stack, free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

NODES = ("127.0.0.2", "127.0.0.3")
TONES = (600.0, 1300.0)


def join(stack: Stack, name: str, host: str, port: int) -> Cluster:
    cluster = Cluster(stack.rooms.sessions, name, f"{host}:{port}", f"http://{host}:8080")
    cluster.heartbeat()
    stack.gateway.flow.cluster, stack.gateway.flow.relay = cluster, stack.gateway.relay
    return cluster


@pytest.mark.e2e
def test_callers_of_two_nodes_meet_in_one_room_mixed_on_the_first_s_node(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    ports = [free_port() for _ in NODES]
    nodes = [make_rooms(tmp_path, PASSERELLE_SIP__LISTEN=f"{host}:{port}", PASSERELLE_DATABASE__URL=database,
                        PASSERELLE_SECURITY__SECRET_KEY="one key for the cluster",
                        PASSERELLE_SIP__RTP_PORT_MIN=str(30000 + 2000 * k),
                        PASSERELLE_SIP__RTP_PORT_MAX=str(31999 + 2000 * k))
             for k, (host, port) in enumerate(zip(NODES, ports, strict=True))]  # fmt: skip
    conference = nodes[0][1].create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    phones = [Phone(tmp_path / name, free_port(), free_port(), 38000 + 200 * k,
                    tone(hz, 8000 * 40, 6000, rate=8000))
              for k, (name, hz) in enumerate(zip("ab", TONES, strict=True))]  # fmt: skip

    async def scenario() -> dict[str, object]:
        seen: dict[str, object] = {}
        async with running(*nodes[0]) as a, running(*nodes[1]) as b:
            clusters = [join(a, "node-a", NODES[0], ports[0]), join(b, "node-b", NODES[1], ports[1])]
            for phone, host, port in zip(phones, NODES, ports, strict=True):
                await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@{host}:{port}")
                await asyncio.sleep(1.5)
                await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
                await asyncio.sleep(2.5)
            seen["in_room_a"] = await a.wait_for_legs(room, 2)
            seen["in_room_b"] = len(b.engine.legs_in(room))
            seen["home"] = clusters[1].home_of(conference.id)
            seen["relays_on_b"] = sum(1 for r in b.engine.rooms() if str(r).startswith("relay:"))
            await asyncio.sleep(4.0)
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            seen["emptied_a"] = await a.wait_for_legs(room, 0, limit_s=8)
            await asyncio.sleep(0.5)
            seen["home_after"] = clusters[0].home_of(conference.id)
            seen["relays_after"] = [r for r in b.engine.rooms() if str(r).startswith("relay:")]
        return seen

    try:
        seen = asyncio.run(asyncio.wait_for(scenario(), 90))
        heard = [phone.heard()[-8000 * 3 :] for phone in phones]
    finally:
        for phone in phones:
            phone.stop()
    assert seen["in_room_a"] == 2, "the second node's caller is not in the room mixed on the first"
    assert seen["in_room_b"] == 0, "the room is mixed on both nodes"
    home = seen["home"]
    assert isinstance(home, Home)
    assert home.node == "node-a", "the room moved to the second caller's node"
    assert not home.here
    assert seen["relays_on_b"] == 1
    for k, other in ((0, 1), (1, 0)):
        assert magnitude_db(heard[k], TONES[other], 8000) > -30, f"phone {'ab'[k]} did not hear phone {'ab'[other]}"
        assert magnitude_db(heard[k], TONES[k], 8000) < magnitude_db(heard[k], TONES[other], 8000) - 20
    assert seen["emptied_a"] == 0
    assert seen["home_after"] is None, "the emptied room is still homed on node a"
    assert seen["relays_after"] == [], "the relay outlived its call"
