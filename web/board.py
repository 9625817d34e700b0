"""A room's whiteboard: pages of drawn objects, changed only by operations the room's hub puts in one order.

Why server-ordered operations and not a CRDT (Yjs): a room has one place where it lives (its hub, on its home node),
which already orders the chat and the participant list; every operation is checked here before anyone sees it
(its kind, size, coordinates, rate, who may draw), and a late joiner gets the board as it is. A CRDT earns its
keep when peers edit apart and merge later, which a live room never does.

An object is a stroke (pen or highlighter: points), a shape (line, arrow, rectangle, ellipse: two corners) or a
text (a point, a size and at most 500 characters), with a colour from the palette and a width; every coordinate
is a fraction of the page (0 to 1), so every screen draws the same board. Operations: ``add`` (its id chosen by
the page, unique), ``extend`` (more points of a stroke its author is drawing, so that the others see it drawn),
``erase`` (an object, by anyone who may draw), ``undo`` / ``redo`` (one's own adds and erases, on one page),
``clear`` (a page: a host, or a layer's owner), ``page`` (a new page). The text of a board is health data like the
chat's: never logged.

Besides its own pages the board keeps *layers*: annotations over something else on the stage, named by what they
cover — ``pdf:<file>:<page>`` (a page of a presented PDF: kept for the conference's life, there again when the
file is presented again) or ``screen:<leg>`` (a screen share its sharer paused: gone when the share resumes or
stops, since the picture under it is). An operation's ``page`` is a board page's number or a layer's name; the
room says which layers may be drawn on now (:meth:`Board.apply`'s ``layer_open``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PALETTE = frozenset({"#1f2328", "#cf222e", "#1a7f37", "#0969da", "#8250df", "#bf8700", "#ffffff", "#fb8500"})
STROKES = frozenset({"pen", "highlighter"})
SHAPES = frozenset({"line", "arrow", "rect", "ellipse"})
KINDS = STROKES | SHAPES | {"text"}
MAX_OBJECTS = 5000  # per page
MAX_PAGES = 20
MAX_POINTS = 2000  # per stroke
MAX_EXTEND = 200  # points in one extend
MAX_TEXT = 500
MAX_LAYERS = 200
ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
LAYER = re.compile(r"^(pdf:[0-9a-f-]{36}:[1-9][0-9]{0,3}|screen:[A-Za-z0-9_-]{1,40})$")

Page = int | str  # a board page's number, or a layer's name


class BoardError(Exception):
    """An operation the board does not take: said to its sender."""


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise BoardError("coordinates: numbers from 0 to 1 (fractions of the page)")
    return round(float(value), 5)


def _points(raw: Any, limit: int) -> list[list[float]]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= limit:
        raise BoardError(f"points: from 1 to {limit} [x, y] pairs")
    out = []
    for point in raw:
        if not isinstance(point, list) or len(point) != 2:
            raise BoardError("points: [x, y] pairs")
        out.append([_fraction(point[0]), _fraction(point[1])])
    return out


def checked(raw: Any) -> dict[str, Any]:
    """A drawn object as the board keeps it, or BoardError."""
    if not isinstance(raw, dict):
        raise BoardError("object: expected a JSON object")
    kind, object_id = raw.get("kind"), raw.get("id")
    if kind not in KINDS:
        raise BoardError(f"kind: one of {', '.join(sorted(KINDS))}")
    if not isinstance(object_id, str) or not ID.match(object_id):
        raise BoardError("id: 1 to 40 letters, digits, - or _")
    colour = raw.get("colour")
    if colour not in PALETTE:
        raise BoardError("colour: one of the palette's")
    width = raw.get("width")
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 40:
        raise BoardError("width: a whole number from 1 to 40")
    out: dict[str, Any] = {"id": object_id, "kind": kind, "colour": colour, "width": width}
    if kind in STROKES:
        out["points"] = _points(raw.get("points"), MAX_POINTS)
    elif kind in SHAPES:
        out["from"], out["to"] = _points([raw.get("from"), raw.get("to")], 2)
    else:
        text = raw.get("text")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_TEXT:
            raise BoardError(f"text: 1 to {MAX_TEXT} characters")
        out["at"] = _points([raw.get("at")], 1)[0]
        out["text"] = text.strip()
    return out


@dataclass
class _Action:
    kind: str  # "add" or "erase"
    page: Page
    item: dict[str, Any]
    at: int  # its place in the page when it was erased (to put it back there)


@dataclass
class Board:
    pages: list[dict[str, dict[str, Any]]] = field(default_factory=lambda: [{}])
    layers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # name → its objects
    seq: int = 0  # operations applied so far
    drawing: dict[str, str] = field(default_factory=dict)  # object id → its author's key, while extendable
    done: dict[str, list[_Action]] = field(default_factory=dict)  # author key → what it may undo
    undone: dict[str, list[_Action]] = field(default_factory=dict)  # author key → what it may redo

    def snapshot(self) -> dict[str, Any]:
        return {"seq": self.seq, "pages": [list(page.values()) for page in self.pages],
                "layers": {name: list(layer.values()) for name, layer in self.layers.items() if layer}}  # fmt: skip

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> Board:
        """A board as :meth:`snapshot` saved it (its objects checked again: a saved state is input too)."""
        board = cls()

        def objects(raw_page: Any) -> dict[str, dict[str, Any]]:
            kept: dict[str, dict[str, Any]] = {}
            for raw in raw_page[:MAX_OBJECTS] if isinstance(raw_page, list) else []:
                try:
                    item = checked(raw)
                except BoardError:
                    continue
                kept[item["id"]] = item
            return kept

        pages = saved.get("pages")
        if isinstance(pages, list) and pages:
            board.pages = [objects(page) for page in pages[:MAX_PAGES]]
        layers = saved.get("layers")
        if isinstance(layers, dict):
            for name, layer in list(layers.items())[:MAX_LAYERS]:
                if isinstance(name, str) and LAYER.match(name) and name.startswith("pdf:"):
                    board.layers[name] = objects(layer)
        seq = saved.get("seq")
        board.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        return board

    def _page(self, raw: Any, layer_open: Callable[[str], bool] = lambda name: False) -> dict[str, dict[str, Any]]:
        if isinstance(raw, str):
            if not LAYER.match(raw) or not layer_open(raw):
                raise BoardError("page: a board page, or what is on the stage now (a presented page, a paused screen)")
            if raw not in self.layers:
                if len(self.layers) >= MAX_LAYERS:
                    raise BoardError(f"a board has at most {MAX_LAYERS} annotated pages")
                self.layers[raw] = {}
            return self.layers[raw]
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < len(self.pages):
            raise BoardError(f"page: from 0 to {len(self.pages) - 1}")
        return self.pages[raw]

    def _items(self, page: Page) -> dict[str, dict[str, Any]] | None:
        if isinstance(page, str):
            return self.layers.get(page)
        return self.pages[page] if page < len(self.pages) else None

    def _holds(self, object_id: str) -> bool:
        return any(object_id in p for p in self.pages) or any(object_id in p for p in self.layers.values())

    def drop_layer(self, name: str) -> dict[str, Any] | None:
        """The layer is gone with what it covered (a screen share resumed or stopped): what everyone is sent (a
        clear of it), or None when nothing was drawn on it."""
        layer = self.layers.pop(name, None)
        for stack in (*self.done.values(), *self.undone.values()):
            stack[:] = [a for a in stack if a.page != name]
        if not layer:
            return None
        self.seq += 1
        return {"seq": self.seq, "op": "clear", "page": name}

    def apply(
        self,
        who: str,
        op: dict[str, Any],
        *,
        host: bool,
        layer_open: Callable[[str], bool] = lambda name: False,
    ) -> dict[str, Any]:
        """Apply one operation by ``who`` (a participant's key): what everyone is sent (with its seq), or
        BoardError and nothing changed. ``host``: it may clear the page it names; ``layer_open``: whether a layer
        may be drawn on now."""
        kind = op.get("op")
        if kind == "add":
            item = checked(op.get("object"))
            if self._holds(item["id"]):
                raise BoardError("id: already on the board")
            page = self._page(op.get("page"), layer_open)
            if len(page) >= MAX_OBJECTS:
                raise BoardError(f"this page has {MAX_OBJECTS} objects: add a page or clear it")
            page[item["id"]] = item
            if item["kind"] in STROKES:
                self.drawing[item["id"]] = who
            self._did(who, _Action("add", op["page"], item, len(page) - 1))
            out: dict[str, Any] = {"op": "add", "page": op["page"], "object": item}
        elif kind == "extend":
            page = self._page(op.get("page"), layer_open)
            object_id = op.get("id")
            if not isinstance(object_id, str) or self.drawing.get(object_id) != who or object_id not in page:
                raise BoardError("id: a stroke this page is drawing")
            item = page[object_id]
            more = _points(op.get("points"), MAX_EXTEND)
            if len(item["points"]) + len(more) > MAX_POINTS:
                raise BoardError(f"a stroke has at most {MAX_POINTS} points: start another")
            item["points"].extend(more)
            out = {"op": "extend", "page": op["page"], "id": object_id, "points": more}
        elif kind == "erase":
            page = self._page(op.get("page"), layer_open)
            object_id = op.get("id")
            if not isinstance(object_id, str) or object_id not in page:
                raise BoardError("id: an object of this page")
            at = list(page).index(object_id)
            item = page.pop(object_id)
            self.drawing.pop(object_id, None)
            self._did(who, _Action("erase", op["page"], item, at))
            out = {"op": "erase", "page": op["page"], "id": object_id}
        elif kind in ("undo", "redo"):
            source = (self.done if kind == "undo" else self.undone).get(who, [])
            on = op.get("page")  # one page's actions (the one in front of its author), or the last of any
            index = next((i for i in range(len(source) - 1, -1, -1) if on is None or source[i].page == on), None)
            if index is None:
                raise BoardError(f"nothing to {kind}")
            action = source.pop(index)
            found = self._items(action.page)
            if found is None or (isinstance(action.page, str) and not layer_open(action.page)):
                raise BoardError(f"nothing to {kind}")
            page = found
            adding = (action.kind == "add") == (kind == "redo")  # undoing an erase adds, redoing an add adds
            if adding:
                if action.item["id"] in page or len(page) >= MAX_OBJECTS:
                    raise BoardError(f"nothing to {kind}")
                items = list(page.items())
                items.insert(min(action.at, len(items)), (action.item["id"], copy.deepcopy(action.item)))
                page.clear()
                page.update(items)
                out = {"op": "add", "page": action.page, "object": action.item, "at": action.at}
            else:
                if page.pop(action.item["id"], None) is None:
                    raise BoardError(f"nothing to {kind}")
                out = {"op": "erase", "page": action.page, "id": action.item["id"]}
            (self.undone if kind == "undo" else self.done).setdefault(who, []).append(action)
        elif kind == "clear":
            if not host:
                raise BoardError("only the conference's host may clear the board")
            page = self._page(op.get("page"), layer_open)
            page.clear()
            for stack in (*self.done.values(), *self.undone.values()):
                stack[:] = [a for a in stack if a.page != op["page"]]
            out = {"op": "clear", "page": op["page"]}
        elif kind == "page":
            if len(self.pages) >= MAX_PAGES:
                raise BoardError(f"a board has at most {MAX_PAGES} pages")
            self.pages.append({})
            out = {"op": "page", "page": len(self.pages) - 1}
        else:
            raise BoardError("op: add, extend, erase, undo, redo, clear or page")
        self.seq += 1
        return {"seq": self.seq, **out}

    def _did(self, who: str, action: _Action) -> None:
        self.done.setdefault(who, []).append(action)
        del self.done[who][:-100]  # the last hundred actions may be undone
        self.undone.pop(who, None)  # a new action: what was undone cannot be redone
