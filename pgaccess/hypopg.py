"""What-if sessions: HypoPG's hypothetical indexes, which the planner sees and nothing builds.

HypoPG keeps them in the backend's memory, outside any transaction (a rollback leaves
them), so a session resets HypoPG when it starts and when it ends. Each index is created
under a key the caller chooses, together with the stand-ins that cost it where HypoPG
cannot (a partial index's non-partial twin, say); a planned index's oid says which key it
belongs to. Keys are the caller's own values: this module knows DDL text, not candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg

from .marker import cursor
from .session import Savepoint, savepoint

logger = logging.getLogger(__name__)

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Hypothetical:
    oid: int
    ddl: str
    size_bytes: int  # HypoPG's estimate of the index once built
    stand_in: bool = False


class WhatIfSession(Generic[Key]):
    """The hypothetical indexes of one connection, each owned by a key.

    A key HypoPG refused once (an expression it cannot plan, say) is refused again
    without a round trip.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._indexes: dict[Key, list[Hypothetical]] = {}  # in creation order
        self._owners: dict[int, Key] = {}
        self._refused: set[Key] = set()

    def __enter__(self) -> WhatIfSession[Key]:
        self.reset()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reset()

    def held(self) -> list[Key]:
        """The keys that have their indexes now, oldest first."""
        return list(self._indexes)

    def __contains__(self, key: Key) -> bool:
        return key in self._indexes

    def index(self, key: Key) -> Hypothetical | None:
        """The index created under `key` (not its stand-ins), if it exists now."""
        made = self._indexes.get(key)
        return made[0] if made else None

    def create(self, key: Key, ddl: str, stand_ins: Sequence[str] = ()) -> Hypothetical | None:
        """The index `ddl` and its stand-ins under `key`; None, and nothing left, if refused."""
        if key in self._indexes:
            return self._indexes[key][0]
        if key in self._refused:
            return None
        created: list[Hypothetical] = []
        try:
            for position, statement in enumerate(dict.fromkeys([ddl, *stand_ins])):
                created.append(self._create(statement, stand_in=position > 0))
        except psycopg.Error as exc:
            logger.info("hypothetical index %s refused: %s", ddl, exc.diag.message_primary)
            for index in created:
                self._drop(index.oid)
            self._refused.add(key)
            return None
        self._indexes[key] = created
        self._owners.update({index.oid: key for index in created})
        return created[0]

    def drop(self, key: Key) -> None:
        for index in self._indexes.pop(key, ()):
            del self._owners[index.oid]
            self._drop(index.oid)

    def owner(self, oid: int) -> Key | None:
        """The key an index (or one of its stand-ins) of this session belongs to."""
        return self._owners.get(oid)

    def stand_ins(self) -> dict[int, Key]:
        """Every stand-in's oid -> its owner."""
        return {i.oid: key for key, made in self._indexes.items() for i in made if i.stand_in}

    @contextmanager
    def stand_ins_dropped(self, oids: Sequence[int]) -> Iterator[None]:
        """Without these stand-ins for a block (a plan they must not serve), then again."""
        dropped = []
        for oid in oids:
            key = self._owners.pop(oid)
            index = next(i for i in self._indexes[key] if i.oid == oid)
            self._indexes[key].remove(index)
            self._drop(oid)
            dropped.append((key, index))
        try:
            yield
        finally:
            for key, index in dropped:
                again = self._create(index.ddl, stand_in=True)
                self._indexes[key].append(again)
                self._owners[again.oid] = key

    def reset(self) -> None:
        """No hypothetical index left in the session, ours or anyone's."""
        with cursor(self._conn) as cur:
            cur.execute("SELECT hypopg_reset()")
        self._indexes.clear()
        self._owners.clear()

    def _create(self, ddl: str, *, stand_in: bool) -> Hypothetical:
        # A refused CREATE rolls back to its savepoint, not the caller's whole transaction.
        with savepoint(self._conn, Savepoint.HYPOTHETICAL), cursor(self._conn) as cur:
            cur.execute(
                "SELECT h.indexrelid, hypopg_relation_size(h.indexrelid) "
                "FROM hypopg_create_index(%s) AS h",
                (ddl,),
            )
            oid, size = cur.fetchone()
        return Hypothetical(int(oid), ddl, int(size), stand_in)

    def _drop(self, oid: int) -> None:
        with cursor(self._conn) as cur:
            cur.execute("SELECT hypopg_drop_index(%s)", (oid,))


def used_oids(plan: dict) -> set[int]:
    """Oids of the hypothetical indexes a plan uses (HypoPG names them "<oid>btree_...")."""
    used = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        name = node.get("Index Name")
        if name and name.startswith("<") and ">" in name:
            digits = name[1 : name.index(">")]
            if digits.isdigit():
                used.add(int(digits))
        stack.extend(node.get("Plans", ()))
    return used
