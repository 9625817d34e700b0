"""A separate process that allocates dial-in codes, one transaction each, and prints them one per line.

usage: python -m tests.rooms.allocate_worker URL COUNT START_AT_EPOCH [SPACE]
SPACE limits draws to that many code bodies, to force contention between processes.
"""

from __future__ import annotations

import secrets
import sys
import time
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from rooms import codes
from rooms.db import make_engine


def main() -> None:
    url, count, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    space = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    draw = (lambda: f"{secrets.randbelow(space):08d}") if space else codes.random_code_body
    engine = make_engine(url)
    time.sleep(max(0.0, start_at - time.time()))
    out = []
    for _ in range(count):
        with Session(engine) as s, s.begin():
            out.append(codes.allocate(s, reserved_until=None, now=datetime.now(UTC), draw=draw))
    engine.dispose()
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
