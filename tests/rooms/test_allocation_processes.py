"""Two processes allocating codes at once against PostgreSQL never get the same code."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from rooms import codes
from rooms.db import make_engine, upgrade
from rooms.models import DialCode

ROOT = Path(__file__).resolve().parents[2]
PER_PROCESS = 10_000


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.parametrize("space", [0, 30_000], ids=["random-codes", "contended-space"])
def test_allocation_two_processes_no_duplicate(postgres_schema_url: str, space: int) -> None:
    engine = make_engine(postgres_schema_url)
    upgrade(engine)
    engine.dispose()
    start_at = time.time() + 2.0
    args = [postgres_schema_url, str(PER_PROCESS), str(start_at)] + ([str(space)] if space else [])
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.rooms.allocate_worker", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
    lists = [out.split() for out, _ in results]
    assert [len(codes_) for codes_ in lists] == [PER_PROCESS, PER_PROCESS]
    every = lists[0] + lists[1]
    assert len(set(every)) == 2 * PER_PROCESS, "a code was handed out twice"
    assert all(codes.is_well_formed(c) for c in every)
    check = create_engine(postgres_schema_url)
    with check.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DialCode)).scalar_one() == 2 * PER_PROCESS
    check.dispose()
