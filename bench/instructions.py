"""Instructions per heartbeat, counted with callgrind: deterministic where timings on
a shared machine are not (docs/benchmarks-notes.md has the figures).

    python -m bench.instructions DATADIR [SETUP_SQL]
    python -m bench.instructions --paths DATADIR

DATADIR is made once, with the pystatus found on PYTHONPATH (so a checkout of
another commit can be compared), migrated, and stopped. Each count then runs a
single-user backend under callgrind on a fresh copy of it, so every run starts
from the same state: a heartbeat's share is the difference between 1,500 and
500 heartbeats in a loop, divided by 1,000 (commit and client excluded); a
batched row's, between batches of 1,500 and 500. SETUP_SQL (e.g. an ALTER
FUNCTION) runs first in each count. --paths counts one upsert by each path of
`make bench`'s first section instead: the bare upsert, the hand-written
statement, the least copy trigger, the upsert on system_status, heartbeat().
Needs valgrind, and root (the backend runs as the postgres user).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from pystatus import migrations
from pystatus.cluster import Cluster, find_bindir, free_port

from .run import BARE, BASELINE_TABLES, ONE_STATEMENT


def make(datadir: Path) -> None:
    cluster = Cluster(datadir=datadir, port=free_port())
    cluster.start()
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE counted")
    migrations.apply(cluster.dsn("counted"))
    with psycopg.connect(cluster.dsn("counted"), autocommit=True) as db:
        db.execute(BASELINE_TABLES)  # the baselines of make bench, for --paths
    cluster.stop()


def count(datadir: Path, script: str) -> int:
    run = datadir.parent / "counting"
    shutil.rmtree(run, ignore_errors=True)
    subprocess.run(["cp", "-a", str(datadir), str(run)], check=True)
    with tempfile.TemporaryDirectory() as out:
        shutil.chown(out, "postgres")
        backend = [str(find_bindir() / "postgres"), "--single", "-D", str(run)]
        done = subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/callgrind.out",
                *backend,
                "-c",
                "shared_preload_libraries=",
                "counted",
            ],
            input=script,
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        sys.exit(f"callgrind gave no total:\n{done.stderr[-2000:]}")
    return int(found[1])


def loop(n: int) -> str:
    return f"DO $$ BEGIN FOR i IN 1..{n} LOOP PERFORM pystatus.heartbeat('svc-' || (i % 100)); END LOOP; END $$\n"


def batch(n: int) -> str:
    return (
        f"SELECT pystatus.heartbeat_many(array_agg('b-' || i), array_fill('ok'::text, ARRAY[{n}]))"
        f" FROM generate_series(1, {n}) AS i\n"
    )


def upserts(statement: str, n: int) -> str:
    """n single-row upserts in a loop, on one line (the single-user backend reads a line a statement)."""
    one = " ".join(statement.replace(":n", "(i % 100)").split()).rstrip(";")
    return f"DO $$ BEGIN FOR i IN 1..{n} LOOP {one}; END LOOP; END $$\n"


def paths(datadir: Path) -> None:
    for name, statement in {
        "bare upsert, no history": BARE,
        "one statement: upsert + history insert": ONE_STATEMENT,
        "bare upsert + the least copy trigger": BARE.replace(
            "bench.bare_status", "bench.least_status"
        ),
        "upsert on system_status (pystatus's trigger)": BARE.replace(
            "bench.bare_status", "public.system_status"
        ),
        "pystatus.heartbeat()": "PERFORM pystatus.heartbeat('svc-' || :n, 'ok')",
    }.items():
        warm = upserts(statement, 200)
        total = count(datadir, warm + upserts(statement, 1500)) - count(
            datadir, warm + upserts(statement, 500)
        )
        print(f"{name}: {total / 1000:,.0f} instructions", flush=True)


def main() -> None:
    if sys.argv[1] == "--paths":
        datadir = Path(sys.argv[2]).resolve()
        if not (datadir / "PG_VERSION").exists():
            make(datadir)
        paths(datadir)
        return
    datadir = Path(sys.argv[1]).resolve()
    setup = sys.argv[2] + "\n" if len(sys.argv) > 2 else ""
    if not (datadir / "PG_VERSION").exists():
        make(datadir)
    warm = setup + loop(20) + batch(1500)
    single = (count(datadir, warm + loop(1500)) - count(datadir, warm + loop(500))) / 1000
    batched = (count(datadir, warm + batch(1500)) - count(datadir, warm + batch(500))) / 1000
    print(f"heartbeat: {single:,.0f} instructions; batched row: {batched:,.0f} instructions")


if __name__ == "__main__":
    main()
