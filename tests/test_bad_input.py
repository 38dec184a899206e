"""Hostile and broken input through the SQL API, the Python client and the CLI:
each case gets its documented error or is stored literally, and a refused
heartbeat never leaves a partial write."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pystatus
from pystatus import cli
from tests.helpers import counts, one

Conn = psycopg.Connection[Any]

# (service name, status, task, latency_ms, expected error or None when stored as given)
CASES: list[tuple[str, str, str | None, float | None, type[Exception] | None]] = [
    ("", "ok", None, None, pystatus.InvalidServiceName),
    ("   ", "ok", None, None, pystatus.InvalidServiceName),
    ("x" * 65, "ok", None, None, pystatus.InvalidServiceName),
    ("y" * 64, "ok", None, None, None),
    ("tab\tname", "ok", None, None, pystatus.InvalidServiceName),
    ("new\nline", "ok", None, None, pystatus.InvalidServiceName),
    ("carriage\rreturn", "ok", None, None, pystatus.InvalidServiceName),
    ("bell\x07", "ok", None, None, pystatus.InvalidServiceName),
    ("delete\x7f", "ok", None, None, pystatus.InvalidServiceName),
    ("nul\x00byte", "ok", None, None, pystatus.InvalidInput),
    (" leading", "ok", None, None, pystatus.InvalidServiceName),
    ("trailing ", "ok", None, None, pystatus.InvalidServiceName),
    ("p\u0430ypal", "ok", None, None, None),  # mixed scripts (Cyrillic U+0430)
    ("api\u200b", "ok", None, None, pystatus.InvalidServiceName),  # zero-width space
    ("\u202eipa", "ok", None, None, pystatus.InvalidServiceName),  # right-to-left override
    ("a\u200dpi", "ok", None, None, pystatus.InvalidServiceName),  # zero-width joiner
    ("api\u00a0", "ok", None, None, pystatus.InvalidServiceName),  # no-break space at the end
    ("\u3000api", "ok", None, None, pystatus.InvalidServiceName),  # ideographic space first
    ("my\u00a0api", "ok", None, None, None),  # a no-break space inside is visible
    ("svc-\U0001f680", "ok", None, None, None),
    ("日本語のサービス", "ok", None, None, None),
    ("'; DROP TABLE system_status; --", "ok", None, None, None),
    ("Robert'); DELETE FROM system_status_history;--", "ok", None, None, None),
    ('quote"double', "ok", None, None, None),
    ("back\\slash", "ok", None, None, None),
    ("%s %(name)s {0}", "ok", None, None, None),  # placeholders stay text
    ("svc", "OK", None, None, pystatus.InvalidStatus),
    ("svc", "Ok", None, None, pystatus.InvalidStatus),
    ("svc", "", None, None, pystatus.InvalidStatus),
    ("svc", " ok", None, None, pystatus.InvalidStatus),
    ("svc", "running", None, None, pystatus.InvalidStatus),
    ("svc", "stale", None, None, pystatus.InvalidStatus),
    ("svc", "ok'; --", None, None, pystatus.InvalidStatus),
    ("svc", "ok", "é" * 2048, None, None),  # 4096 bytes: the limit
    ("svc", "ok", "é" * 2048 + "x", None, pystatus.InvalidTask),
    ("svc", "ok", "x" * 100_000, None, pystatus.InvalidTask),
    ("svc", "ok", "task\x00", None, pystatus.InvalidInput),
    ("svc", "ok", "'; DROP TABLE system_status; --", None, None),
    ("svc", "ok", None, float("nan"), pystatus.InvalidMeasure),
    ("svc", "ok", None, float("inf"), pystatus.InvalidMeasure),
    ("svc", "ok", None, float("-inf"), pystatus.InvalidMeasure),
    ("svc", "ok", None, -0.5, pystatus.InvalidMeasure),
    ("svc", "ok", None, 0.0, None),
    ("svc", "ok", None, 1e300, None),
]


@pytest.mark.parametrize(("name", "status", "task", "latency", "error"), CASES)
def test_python_client(
    db: Conn,
    name: str,
    status: str,
    task: str | None,
    latency: float | None,
    error: type[Exception] | None,
) -> None:
    if error is None:
        pystatus.heartbeat(db, name, status, task, latency)
        row = db.execute(
            "SELECT service_name, status, current_task, latency_ms FROM system_status"
        ).fetchone()
        assert row == (name, status, task, latency)
        assert counts(db) == (1, 1)
    else:
        with pytest.raises(error):
            pystatus.heartbeat(db, name, status, task, latency)
        assert counts(db) == (0, 0)


SQLSTATES = {
    pystatus.InvalidServiceName: "PS001",
    pystatus.InvalidStatus: "PS002",
    pystatus.InvalidTask: "PS003",
    pystatus.InvalidMeasure: "PS006",
}


@pytest.mark.parametrize(
    ("name", "status", "task", "latency", "error"),
    [c for c in CASES if "\x00" not in c[0] + (c[2] or "")],
)
def test_sql_api(
    db: Conn,
    name: str,
    status: str,
    task: str | None,
    latency: float | None,
    error: type[Exception] | None,
) -> None:
    call = "SELECT pystatus.heartbeat(%s::text, %s::text, %s::text, %s::float8)"
    if error is None:
        db.execute(call, (name, status, task, latency))
        assert counts(db) == (1, 1)
    else:
        with pytest.raises(psycopg.Error) as raised:
            db.execute(call, (name, status, task, latency))
        assert raised.value.sqlstate == SQLSTATES[error]
        assert counts(db) == (0, 0)


@pytest.mark.parametrize(
    ("name", "status", "task", "latency", "error"), [c for c in CASES if c[3] is None]
)
def test_cli(
    db: Conn,
    dsn: str,
    capsys: pytest.CaptureFixture[str],
    name: str,
    status: str,
    task: str | None,
    latency: float | None,
    error: type[Exception] | None,
) -> None:
    argv = ["heartbeat", name, "--status", status, "--dsn", dsn] + (
        ["--task", task] if task else []
    )
    code = cli.main(argv)
    err = capsys.readouterr().err
    if error is None:
        assert code == 0 and counts(db) == (1, 1)
    else:
        assert code == 1 and err.startswith("pystatus: error: ") and "Traceback" not in err
        assert counts(db) == (0, 0)


@pytest.mark.parametrize(
    "at",
    [
        "timestamptz '1900-01-01 00:00+00'",
        "timestamptz '3000-01-01 00:00+00'",
        # In the future by the server's clock when the test runs, however late that is.
        "now() + interval '5 minutes'",
    ],
)
def test_backfill_times_far_away_are_refused(db: Conn, at: str) -> None:
    with pytest.raises(pystatus.InvalidTime):
        pystatus.record_heartbeat(db, "svc", "ok", None, one(db, f"SELECT {at}"))
    assert counts(db) == (0, 0)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(max_size=80),
    status=st.text(max_size=12),
    task=st.one_of(st.none(), st.text(max_size=50)),
)
def test_any_input_is_stored_exactly_or_refused_whole(
    db: Conn, name: str, status: str, task: str | None
) -> None:
    db.execute("TRUNCATE system_status, system_status_history")
    try:
        pystatus.heartbeat(db, name, status, task)
    except pystatus.InvalidInput:
        assert counts(db) == (0, 0)
        return
    # The task is stored cleaned (pystatus.clean_text()), the rest exactly.
    assert db.execute(
        "SELECT service_name, status, current_task FROM system_status"
    ).fetchone() == (name, status, one(db, "SELECT pystatus.clean_text(%s)", (task,)))
    assert counts(db) == (1, 1)
