"""The whiteboard (web/board.py) and its operations through the room's channel: objects checked (kind, colour,
width, coordinates, sizes), strokes extended only by their author, erase by object, undo and redo of one's own
actions, clear by a host only, pages; through the hub: everyone gets each operation in one order, a late joiner
gets the board, a guest may not draw once a host says only hosts draw, 30 operations a second at most; layers
over a presented page or a paused screen only while it is on the stage; a burst of operations in few frames."""

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


PDF = "pdf:0b4a8f3e-5c1d-4e2a-9f00-123456789abc:3"


def test_layers_over_the_stage_are_drawn_only_while_it_is_there() -> None:
    board = Board()
    shown: set[str] = set()
    opened = shown.__contains__
    with pytest.raises(BoardError, match="what is on the stage now"):
        board.apply("a", {"op": "add", "page": PDF, "object": pen("n1")}, host=False, layer_open=opened)
    with pytest.raises(BoardError, match="what is on the stage now"):  # not a layer's name at all
        board.apply("a", {"op": "add", "page": "../x", "object": pen("n1")}, host=False, layer_open=lambda n: True)
    shown |= {PDF, "screen:leg-7"}
    board.apply("a", {"op": "add", "page": PDF, "object": pen("n1", [0.5, 0.5])}, host=False, layer_open=opened)
    board.apply("a", {"op": "add", "page": "screen:leg-7", "object": pen("n2")}, host=False, layer_open=opened)
    board.apply("a", {"op": "add", "page": 0, "object": pen("b1")}, host=False, layer_open=opened)
    with pytest.raises(BoardError, match="already on the board"):  # ids are unique across pages and layers
        board.apply("a", {"op": "add", "page": 0, "object": pen("n1")}, host=False, layer_open=opened)
    # undo of one page's actions: the presented page's stroke, not the board's later one
    undone = board.apply("a", {"op": "undo", "page": PDF}, host=False, layer_open=opened)
    assert undone == {"seq": 4, "op": "erase", "page": PDF, "id": "n1"}
    assert [o["id"] for o in board.snapshot()["pages"][0]] == ["b1"]
    board.apply("a", {"op": "redo", "page": PDF}, host=False, layer_open=opened)
    with pytest.raises(BoardError, match="host"):  # the owner of a layer (or a host) clears it
        board.apply("a", {"op": "clear", "page": PDF}, host=False, layer_open=opened)
    shown.discard(PDF)  # the presentation stopped: its layer is kept, not drawn on
    with pytest.raises(BoardError, match="what is on the stage now"):
        board.apply("a", {"op": "erase", "page": PDF, "id": "n1"}, host=False, layer_open=opened)
    assert board.drop_layer("screen:leg-7") == {"seq": 6, "op": "clear", "page": "screen:leg-7"}
    assert board.drop_layer("screen:leg-7") is None  # nothing left to clear: nothing sent
    with pytest.raises(BoardError, match="nothing to undo"):  # the paused screen's stroke went with it
        board.apply("a", {"op": "undo", "page": "screen:leg-7"}, host=False, layer_open=opened)
    saved = board.snapshot()
    assert list(saved["layers"]) == [PDF]
    again = Board.restored(saved)  # the presented page's annotations outlive a restart; a screen's never do
    assert again.snapshot() == saved
    assert list(Board.restored({**saved, "layers": {**saved["layers"], "screen:leg-7": [pen("n3")]}}).layers) == [PDF]


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
        out["host_sees"] = (await until(host, "board-ops"))["ops"][0]
        out["anne_sees"] = (await until(anne, "board-ops"))["ops"][0]
        await anne.send_json({"type": "board", "op": "extend", "page": 0, "id": "a1", "points": [[0.2, 0.2]]})
        await until(host, "board-ops")
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
    assert out["empty"] == {"type": "board", "seq": 0, "pages": [[]], "layers": {}}
    assert out["host_sees"] == out["anne_sees"]
    assert out["host_sees"]["seq"] == 1
    assert out["host_sees"]["object"]["id"] == "a1"
    assert out["late"]["seq"] == 2
    assert out["late"]["pages"][0][0]["points"] == [[0.1, 0.1], [0.2, 0.2]]
    assert out["hosts_only"] == "only the host draws on the board now"
    assert out["rate"] == "too many operations: at most 30 a second"


def test_a_layer_is_drawn_only_over_what_the_room_shows_now(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> list[str]:
        socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Anne', 'audio', None)}")
        welcome = await until(socket, "welcome")
        await socket.send_json(await offer())
        await until(socket, "board")
        said: list[str] = []
        for page in (PDF, f"screen:{welcome['you']}"):  # nothing presented, no screen shared, none held
            await socket.send_json({"type": "board", "op": "add", "page": page, "object": pen(f"x{len(said)}")})
            said.append((await until(socket, "error"))["message"])
        await socket.send_json({"type": "screen-pause", "paused": True})
        said.append((await until(socket, "error"))["message"])
        await socket.close()
        return said

    assert run(settings, rooms, scenario) == [
        "page: a board page, or what is on the stage now (a presented page, a paused screen)",
        "page: a board page, or what is on the stage now (a presented page, a paused screen)",
        "this page shares no screen",
    ]


def test_a_burst_of_operations_reaches_every_page_in_few_frames_in_order(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> list[dict[str, Any]]:
        socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Anne', 'audio', None)}")
        await until(socket, "welcome")
        await socket.send_json(await offer())
        await until(socket, "board")
        await socket.send_json({"type": "board", "op": "add", "page": 0, "object": pen("s", [0.0, 0.0])})
        for n in range(1, 21):
            await socket.send_json({"type": "board", "op": "extend", "page": 0, "id": "s", "points": [[n / 100, 0]]})
        frames: list[dict[str, Any]] = []
        while sum(len(f["ops"]) for f in frames) < 21:
            frames.append(await until(socket, "board-ops"))
        await socket.close()
        return frames

    frames = run(settings, rooms, scenario)
    ops = [op for frame in frames for op in frame["ops"]]
    assert [op["seq"] for op in ops] == list(range(1, 22))
    assert [op["points"][0][0] for op in ops[1:]] == [n / 100 for n in range(1, 21)]
    assert len(frames) < 10, f"21 operations sent at once came in {len(frames)} frames"


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
        await until(socket, "board-ops")
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
