"""The whiteboard (web/board.py) and its operations through the room's channel: objects checked (kind, colour,
width, coordinates, sizes), strokes extended only by their author, erase by object, undo and redo of one's own
actions, clear by a host only, pages; through the hub: everyone gets each operation in one order, a late joiner
gets the board, a guest may not draw once a host says only hosts draw, 30 operations a second at most."""

from __future__ import annotations

from typing import Any

import pytest

from config import Settings
from rooms import ConferenceDraft, Rooms
from tests.conftest import FakeClock
from tests.web.test_room_follows import Client, offer, run, until
from web import tickets
from web.board import MAX_POINTS, Board, BoardError


def pen(object_id: str, *points: list[float]) -> dict[str, Any]:
    return {"id": object_id, "kind": "pen", "colour": "#0969da", "width": 4, "points": list(points) or [[0.1, 0.1]]}


def test_objects_are_checked_before_they_are_drawn() -> None:
    board = Board()
    board.apply("a", {"op": "add", "page": 0, "object": pen("s1", [0.1, 0.2], [0.3, 0.4])}, host=False)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"op": "add", "page": 0, "object": pen("s1")}, "already on the board"),
        ({"op": "add", "page": 1, "object": pen("s2")}, "page: from 0 to 0"),
        ({"op": "add", "page": 0, "object": {**pen("s2"), "kind": "script"}}, "kind:"),
        ({"op": "add", "page": 0, "object": {**pen("s2"), "colour": "red; x"}}, "colour"),
        ({"op": "add", "page": 0, "object": {**pen("s2"), "width": 400}}, "width"),
        ({"op": "add", "page": 0, "object": pen("s2", [1.5, 0.2])}, "coordinates"),
        ({"op": "add", "page": 0, "object": pen("s2", [True, 0.2])}, "coordinates"),
        ({"op": "add", "page": 0, "object": {**pen("s2"), "id": "<img>"}}, "id:"),
        ({"op": "add", "page": 0, "object": {**pen("s2"), "points": [[0.1, 0.1]] * (MAX_POINTS + 1)}}, "points"),
        (
            {
                "op": "add",
                "page": 0,
                "object": {"id": "t", "kind": "text", "colour": "#1f2328", "width": 2, "at": [0.5, 0.5], "text": " "},
            },
            "text",
        ),
        ({"op": "extend", "page": 0, "id": "s1", "points": [[0.5, 0.5]]}, "a stroke this page is drawing"),
        ({"op": "teleport"}, "op:"),
        ({"op": "clear", "page": 0}, "host"),
    ]
    for op, said in bad:
        with pytest.raises(BoardError) as refused:
            board.apply("b", op, host=False)  # "b" is not the author of s1
        assert said in str(refused.value), (op, str(refused.value))
    assert board.seq == 1, "a refused operation changed the board"
    assert [o["id"] for o in board.snapshot()["pages"][0]] == ["s1"]


def test_strokes_grow_as_drawn_and_undo_redo_are_ones_own() -> None:
    board = Board()
    board.apply("a", {"op": "add", "page": 0, "object": pen("s1", [0.1, 0.1])}, host=False)
    grown = board.apply("a", {"op": "extend", "page": 0, "id": "s1", "points": [[0.2, 0.2], [0.3, 0.3]]}, host=False)
    assert grown["points"] == [[0.2, 0.2], [0.3, 0.3]]
    board.apply("b", {"op": "add", "page": 0, "object": {"id": "r1", "kind": "rect", "colour": "#cf222e",
                                                         "width": 2, "from": [0.1, 0.1], "to": [0.4, 0.5]}},
                host=False)  # fmt: skip
    board.apply("b", {"op": "erase", "page": 0, "id": "s1"}, host=False)  # an eraser takes anyone's object
    assert [o["id"] for o in board.snapshot()["pages"][0]] == ["r1"]
    back = board.apply("b", {"op": "undo"}, host=False)  # b's erase undone: s1 back in its place
    assert back["op"] == "add"
    assert [o["id"] for o in board.snapshot()["pages"][0]] == ["s1", "r1"]
    assert board.snapshot()["pages"][0][0]["points"] == [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]
    board.apply("b", {"op": "undo"}, host=False)  # then b's rectangle
    with pytest.raises(BoardError, match="nothing to undo"):
        board.apply("b", {"op": "undo"}, host=False)
    board.apply("b", {"op": "redo"}, host=False)
    assert [o["id"] for o in board.snapshot()["pages"][0]] == ["s1", "r1"]
    board.apply("a", {"op": "undo"}, host=False)  # a's own stroke
    assert [o["id"] for o in board.snapshot()["pages"][0]] == ["r1"]
    assert board.apply("h", {"op": "page"}, host=False)["page"] == 1
    board.apply("h", {"op": "clear", "page": 0}, host=True)
    assert board.snapshot()["pages"] == [[], []]
    with pytest.raises(BoardError):
        board.apply("b", {"op": "redo"}, host=False)  # nothing of a cleared page comes back


def test_every_page_gets_each_operation_and_a_late_joiner_the_board(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))

    async def page(client: Client, key: bytes, name: str, *, host: bool = False) -> Any:
        socket = await client.ws_connect(
            f"/ws/room/{tickets.issue(key, conference.id, name, 'audio', None, host=host)}"
        )
        await until(socket, "welcome")
        await socket.send_json(await offer())
        return socket

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        host = await page(client, key, "Dr Martin", host=True)
        out["empty"] = await until(host, "board")
        anne = await page(client, key, "Anne")
        await until(anne, "board")
        await anne.send_json({"op": "add", "type": "board", "page": 0, "object": pen("a1", [0.1, 0.1])})
        out["host_sees"] = await until(host, "board-op")
        out["anne_sees"] = await until(anne, "board-op")
        await anne.send_json({"type": "board", "op": "extend", "page": 0, "id": "a1", "points": [[0.2, 0.2]]})
        await until(host, "board-op")
        late = await page(client, key, "Paul")
        out["late"] = await until(late, "board")
        await host.send_json({"type": "settings", "board_hosts_only": True})
        await until(anne, "settings")
        await anne.send_json({"type": "board", "op": "add", "page": 0, "object": pen("a2")})
        out["hosts_only"] = (await until(anne, "error"))["message"]
        await host.send_json({"type": "settings", "board_hosts_only": False})
        await until(anne, "settings")
        for n in range(40):  # faster than 30 a second: the rest refused
            await anne.send_json({"type": "board", "op": "add", "page": 0, "object": pen(f"b{n}")})
        out["rate"] = (await until(anne, "error"))["message"]
        for socket in (host, anne, late):
            await socket.close()
        return out

    out = run(settings, rooms, scenario)
    assert out["empty"] == {"type": "board", "seq": 0, "pages": [[]]}
    assert out["host_sees"] == out["anne_sees"]
    assert out["host_sees"]["seq"] == 1
    assert out["host_sees"]["object"]["id"] == "a1"
    assert out["late"]["seq"] == 2
    assert out["late"]["pages"][0][0]["points"] == [[0.1, 0.1], [0.2, 0.2]]
    assert out["hosts_only"] == "only the host draws on the board now"
    assert out["rate"] == "too many operations: at most 30 a second"


def test_the_board_is_kept_for_the_conference_s_life_and_purged_after(
    settings: Settings, rooms: Rooms, clock: FakeClock
) -> None:
    import asyncio
    from datetime import timedelta

    from rooms.retention import Retention

    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))

    async def draw(client: Client, key: bytes) -> None:
        socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Anne', 'audio', None)}")
        await until(socket, "welcome")
        await socket.send_json(await offer())
        await until(socket, "board")
        await socket.send_json({"type": "board", "op": "add", "page": 0, "object": pen("kept", [0.2, 0.2])})
        await until(socket, "board-op")
        await asyncio.sleep(2.5)  # saved within 2 s of a change
        await socket.close()

    async def look(client: Client, key: bytes) -> dict[str, Any]:
        socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Paul', 'audio', None)}")
        await until(socket, "welcome")
        await socket.send_json(await offer())
        board = await until(socket, "board")
        await socket.close()
        return board

    run(settings, rooms, draw)
    again = run(settings, rooms, look)  # another service: the board was read back from the database
    assert [o["id"] for o in again["pages"][0]] == ["kept"]
    assert again["seq"] == 1
    clock.advance(timedelta(days=settings.retention.files_days, hours=1))
    assert Retention(rooms.sessions, settings, clock).purge()["room_boards"] == 1
    assert rooms.boards.load(conference.id) is None
