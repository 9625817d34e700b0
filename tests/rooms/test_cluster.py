"""Nodes sharing a database and the home of each room (rooms/cluster.py), on SQLite and PostgreSQL: the first node
to claim a room has it, others are told where it is; a dead node's room is taken over with the next epoch, and the
node that lost it can tell; a released room is claimed anew; many nodes racing for one room end with one home."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from sqlalchemy import Engine

from rooms import ConferenceDraft, Rooms
from rooms.cluster import Cluster
from rooms.db import session_factory
from tests.conftest import FakeClock


def node(engine: Engine, clock: FakeClock, name: str) -> Cluster:
    cluster = Cluster(session_factory(engine), name, f"{name}.example:5060", f"https://{name}.example",
                      now=clock, dead_after_s=10)  # fmt: skip
    cluster.heartbeat()
    return cluster


def conference(rooms: Rooms) -> uuid.UUID:
    return rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off")).id


def test_the_first_node_has_the_room_and_the_others_are_told_where(engine: Engine, clock: FakeClock,
                                                                     rooms: Rooms) -> None:  # fmt: skip
    a, b = node(engine, clock, "a"), node(engine, clock, "b")
    room = conference(rooms)
    assert a.home_of(room) is None
    home = a.claim(room)
    assert (home.node, home.epoch, home.here) == ("a", 1, True)
    seen = b.claim(room)
    assert (seen.node, seen.epoch, seen.here) == ("a", 1, False)
    assert (seen.sip_address, seen.public_url) == ("a.example:5060", "https://a.example")
    assert b.home_of(room) == seen
    assert a.claim(room).here  # claiming again changes nothing
    assert [(n.name, n.alive, n.rooms) for n in b.nodes()] == [("a", True, 1), ("b", True, 0)]


def test_a_dead_node_s_room_is_taken_over_and_the_node_back_from_the_dead_knows_it_lost_it(
    engine: Engine, clock: FakeClock, rooms: Rooms
) -> None:
    a, b = node(engine, clock, "a"), node(engine, clock, "b")
    room = conference(rooms)
    a.claim(room)
    clock.advance(timedelta(seconds=9))
    b.heartbeat()
    assert not b.claim(room).here, "a node 9 s silent is still alive"
    clock.advance(timedelta(seconds=2))  # a: 11 s without a heartbeat
    assert b.home_of(room) is None
    taken = b.claim(room)
    assert (taken.node, taken.epoch, taken.here) == ("b", 2, True)
    assert not a.still_home(room, 1), "the old home would mix the room a second time"
    assert b.still_home(room, 2)
    a.heartbeat()  # back: the room stays where it went
    assert a.claim(room).node == "b"
    a.release(room, 1)  # a stale release takes nothing away
    assert b.home_of(room) is not None
    b.release(room, 2)
    assert a.claim(room).epoch == 1  # released: claimed anew from the start


def test_a_stopping_node_leaves_and_its_rooms_are_claimed_elsewhere(engine: Engine, clock: FakeClock,
                                                                     rooms: Rooms) -> None:  # fmt: skip
    a, b = node(engine, clock, "a"), node(engine, clock, "b")
    rooms_of_a = [conference(rooms) for _ in range(3)]
    for room in rooms_of_a:
        a.claim(room)
    a.draining = True
    a.heartbeat()
    assert [n.draining for n in b.nodes()] == [True, False]
    assert not b.claim(rooms_of_a[0]).here, "a draining node keeps its rooms while its calls go on"
    a.leave()
    assert [n.name for n in b.nodes()] == ["b"]
    assert all(b.claim(room).here for room in rooms_of_a)


def test_nodes_racing_for_one_room_end_with_one_home(engine: Engine, clock: FakeClock, rooms: Rooms) -> None:
    racers = [node(engine, clock, f"n{k}") for k in range(6)]
    room = conference(rooms)
    homes: list[str] = []
    start = threading.Barrier(len(racers))

    def race(cluster: Cluster) -> None:
        start.wait()
        homes.append(cluster.claim(room).node)

    threads = [threading.Thread(target=race, args=(c,)) for c in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(homes) == 6
    assert len(set(homes)) == 1, homes


def test_a_node_dead_for_a_day_is_forgotten(engine: Engine, clock: FakeClock) -> None:
    a, b = node(engine, clock, "a"), node(engine, clock, "b")
    clock.advance(timedelta(hours=23))
    b.heartbeat()
    assert [(n.name, n.alive) for n in b.nodes()] == [("a", False), ("b", True)]  # shown dead for a while
    clock.advance(timedelta(hours=2))
    b.heartbeat()
    assert [n.name for n in b.nodes()] == ["b"]
    a.heartbeat()  # it came back after all: there again
    assert [n.name for n in b.nodes()] == ["a", "b"]
