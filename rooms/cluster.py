"""Nodes sharing one database, and the one node each room is mixed on (its home).

Every ``passerelle serve`` of a cluster writes its row in ``nodes`` at start and refreshes ``heartbeat_at`` every
few seconds (:meth:`Cluster.heartbeat`); one whose heartbeat is older than ``dead_after_s`` is dead. A room's home
is claimed by the node where its first participant arrives (:meth:`Cluster.claim`), recorded with an ``epoch`` that
grows at every claim: the claim is a compare-and-swap on that epoch, so two nodes racing for a room, or for a dead
node's room, end with one home, and a node that was thought dead and comes back can tell it lost the room
(:meth:`Cluster.still_home`). A room that empties is released by its home (:meth:`Cluster.release`); a stopping
node leaves (:meth:`Cluster.leave`): its row and its rooms' homes go, the next joiner claims them again.

A draining node keeps its rooms' homes while its calls go on (a caller moved to a room there still reaches it),
it only gets no new call from the SIP front. Nothing here is personal: node names, addresses of the nodes, ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from rooms.models import Node, RoomHome

DEAD_AFTER_S = 10.0  # a node silent this long is dead: its rooms may be claimed by others
FORGET_AFTER = timedelta(days=1)  # a dead node's row stays this long for the operator's page, then goes


@dataclass(frozen=True, slots=True)
class Home:
    """Where a room is mixed: the node's name, its addresses, the claim's epoch; ``here`` when it is this node."""

    node: str
    epoch: int
    sip_address: str
    public_url: str
    here: bool


@dataclass(frozen=True, slots=True)
class NodeState:
    name: str
    sip_address: str
    public_url: str
    heartbeat_at: datetime
    alive: bool
    draining: bool
    rooms: int


class Cluster:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        sip_address: str,
        public_url: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        dead_after_s: float = DEAD_AFTER_S,
    ) -> None:
        self._sessions = sessions
        self.name, self.sip_address, self.public_url = name, sip_address, public_url
        self._now = now
        self.dead_after = timedelta(seconds=dead_after_s)
        self.draining = False

    # -- this node ---------------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """This node is alive (its row written the first time, its addresses and drain state kept current)."""
        now = self._now()
        with self._sessions.begin() as session:
            session.execute(delete(Node).where(Node.heartbeat_at < now - FORGET_AFTER, Node.name != self.name))
            row = session.get(Node, self.name)
            if row is None:
                session.add(Node(name=self.name, sip_address=self.sip_address, public_url=self.public_url,
                                 started_at=now, heartbeat_at=now, draining=self.draining))  # fmt: skip
                return
            row.sip_address, row.public_url = self.sip_address, self.public_url
            row.heartbeat_at, row.draining = now, self.draining

    def leave(self) -> None:
        """Stopping: this node's row and its rooms' homes go (the next joiner of each claims it elsewhere)."""
        with self._sessions.begin() as session:
            session.execute(delete(RoomHome).where(RoomHome.node == self.name))
            session.execute(delete(Node).where(Node.name == self.name))

    # -- rooms -------------------------------------------------------------------------------------------------

    def claim(self, conference_id: uuid.UUID) -> Home:
        """The room's home: this node if the room had none, or its home is dead (then taken over, epoch + 1);
        otherwise the live node that has it. Safe against other nodes claiming at the same time."""
        for _ in range(5):  # a lost race is read again; five lost races in a row would be a bug
            with self._sessions.begin() as session:
                row = session.get(RoomHome, conference_id)
                if row is None:
                    session.add(RoomHome(conference_id=conference_id, node=self.name, epoch=1,
                                         claimed_at=self._now()))  # fmt: skip
                    try:
                        session.flush()
                    except IntegrityError:
                        session.rollback()
                        continue
                    return self._home(self.name, 1)
                if row.node == self.name:
                    return self._home(self.name, row.epoch)
                owner = session.get(Node, row.node)
                if owner is not None and self._alive(owner):
                    return Home(owner.name, row.epoch, owner.sip_address, owner.public_url, here=False)
                done = session.execute(
                    update(RoomHome)
                    .where(RoomHome.conference_id == conference_id, RoomHome.epoch == row.epoch)
                    .values(node=self.name, epoch=row.epoch + 1, claimed_at=self._now())
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount == 1:  # type: ignore[attr-defined]  # the epoch was still the one read
                    return self._home(self.name, row.epoch + 1)
        raise RuntimeError(f"room {conference_id}: its home could not be claimed")

    def home_of(self, conference_id: uuid.UUID) -> Home | None:
        """The room's live home, or None (no home, or a dead node's)."""
        with self._sessions() as session:
            row = session.get(RoomHome, conference_id)
            if row is None:
                return None
            if row.node == self.name:
                return self._home(self.name, row.epoch)
            owner = session.get(Node, row.node)
            if owner is None or not self._alive(owner):
                return None
            return Home(owner.name, row.epoch, owner.sip_address, owner.public_url, here=False)

    def still_home(self, conference_id: uuid.UUID, epoch: int) -> bool:
        """This node's claim of ``epoch`` still holds (no other node took the room over meanwhile)."""
        with self._sessions() as session:
            row = session.get(RoomHome, conference_id)
            return row is not None and row.node == self.name and row.epoch == epoch

    def release(self, conference_id: uuid.UUID, epoch: int) -> None:
        """The room emptied here: its home goes, unless another node has taken it since."""
        with self._sessions.begin() as session:
            session.execute(delete(RoomHome).where(RoomHome.conference_id == conference_id,
                                                   RoomHome.node == self.name, RoomHome.epoch == epoch))  # fmt: skip

    def nodes(self) -> list[NodeState]:
        """Every node in the table, alive or not, with how many rooms it has (for the operator's page)."""
        with self._sessions() as session:
            rows = session.scalars(select(Node).order_by(Node.name)).all()
            homes = session.scalars(select(RoomHome.node)).all()
            return [NodeState(r.name, r.sip_address, r.public_url, r.heartbeat_at, self._alive(r), r.draining,
                              sum(1 for h in homes if h == r.name)) for r in rows]  # fmt: skip

    def _alive(self, node: Node) -> bool:
        return node.name == self.name or self._now() - node.heartbeat_at <= self.dead_after

    def _home(self, node: str, epoch: int) -> Home:
        return Home(node, epoch, self.sip_address, self.public_url, here=True)
