"""A room's whiteboard: pages of drawn objects, changed only by operations the room's hub puts in one order.

Why server-ordered operations and not a CRDT (Yjs): a room has one place where it lives (its hub, on its home node),
which already orders the chat and the participant list; every operation is checked here before anyone sees it
(its kind, size, coordinates, rate, who may draw), and a late joiner gets the board as it is. A CRDT earns its
keep when peers edit apart and merge later, which a live room never does.

An object is a stroke (pen or highlighter: points), a shape (line, arrow, rectangle, ellipse: two corners) or a
text (a point, a size and at most 500 characters), with a colour from the palette and a width; every coordinate
is a fraction of the page (0 to 1), so every screen draws the same board. Operations: ``add`` (its id chosen by
the page, unique), ``extend`` (more points of a stroke its author is drawing, so that the others see it drawn),
``erase`` (an object, by anyone who may draw), ``undo`` / ``redo`` (one's own adds and erases), ``clear`` (a page,
a host), ``page`` (a new page). The text of a board is health data like the chat's: never logged.
"""

from __future__ import annotations

import copy
import re
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
ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


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
    page: int
    item: dict[str, Any]
    at: int  # its place in the page when it was erased (to put it back there)


@dataclass
class Board:
    pages: list[dict[str, dict[str, Any]]] = field(default_factory=lambda: [{}])
    seq: int = 0  # operations applied so far
    drawing: dict[str, str] = field(default_factory=dict)  # object id → its author's key, while extendable
    done: dict[str, list[_Action]] = field(default_factory=dict)  # author key → what it may undo
    undone: dict[str, list[_Action]] = field(default_factory=dict)  # author key → what it may redo

    def snapshot(self) -> dict[str, Any]:
        return {"seq": self.seq, "pages": [list(page.values()) for page in self.pages]}

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> Board:
        """A board as :meth:`snapshot` saved it (its objects checked again: a saved state is input too)."""
        board = cls()
        pages = saved.get("pages")
        if isinstance(pages, list) and pages:
            board.pages = []
            for page in pages[:MAX_PAGES]:
                kept: dict[str, dict[str, Any]] = {}
                for raw in page[:MAX_OBJECTS] if isinstance(page, list) else []:
                    try:
                        item = checked(raw)
                    except BoardError:
                        continue
                    kept[item["id"]] = item
                board.pages.append(kept)
        seq = saved.get("seq")
        board.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        return board

    def _page(self, raw: Any) -> dict[str, dict[str, Any]]:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < len(self.pages):
            raise BoardError(f"page: from 0 to {len(self.pages) - 1}")
        return self.pages[raw]

    def apply(self, who: str, op: dict[str, Any], *, host: bool) -> dict[str, Any]:
        """Apply one operation by ``who`` (a participant's key): what everyone is sent (with its seq), or
        BoardError and nothing changed."""
        kind = op.get("op")
        if kind == "add":
            page = self._page(op.get("page"))
            item = checked(op.get("object"))
            if any(item["id"] in p for p in self.pages):
                raise BoardError("id: already on the board")
            if len(page) >= MAX_OBJECTS:
                raise BoardError(f"this page has {MAX_OBJECTS} objects: add a page or clear it")
            page[item["id"]] = item
            if item["kind"] in STROKES:
                self.drawing[item["id"]] = who
            self._did(who, _Action("add", op["page"], item, len(page) - 1))
            out: dict[str, Any] = {"op": "add", "page": op["page"], "object": item}
        elif kind == "extend":
            page = self._page(op.get("page"))
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
            page = self._page(op.get("page"))
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
            if not source:
                raise BoardError(f"nothing to {kind}")
            action = source.pop()
            if action.page >= len(self.pages):
                raise BoardError(f"nothing to {kind}")
            page = self.pages[action.page]
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
            page = self._page(op.get("page"))
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
        return {"type": "board-op", "seq": self.seq, **out}

    def _did(self, who: str, action: _Action) -> None:
        self.done.setdefault(who, []).append(action)
        del self.done[who][:-100]  # the last hundred actions may be undone
        self.undone.pop(who, None)  # a new action: what was undone cannot be redone
