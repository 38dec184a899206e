"""The HTTP ping endpoint: tokens made and revoked from the CLI and stored hashed,
pings over real HTTP (curl too) as a least-privilege writer login, bad tokens and
input refused with nothing written, the rate limit, concurrent pings, and a
database that goes away and comes back."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import psycopg
import psycopg.errors
import pytest
from psycopg import sql

import pystatus
from pystatus import admin, migrations
from pystatus.cli import main as cli
from pystatus.cluster import Cluster, free_port
from pystatus.errors import NotAllowed, UnknownToken
from pystatus.ingest import RateLimiter, check_login, create_app, refuse_owner, task_from_body
from tests.helpers import one, wait_for
from tests.serving import serving

Conn = psycopg.Connection[Any]
_serial = itertools.count()


@pytest.fixture
def writer_dsn(db: Conn, dsn: str) -> Iterator[str]:
    """A login granted pystatus_writer and nothing else, as pystatus ingest runs."""
    name = f"ingest_{next(_serial)}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE pystatus_writer").format(sql.Identifier(name)))
    yield f"{dsn} user={name}"
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def ingest(writer_dsn: str) -> Iterator[str]:
    with serving(create_app(writer_dsn, rate_per_minute=0, max_body=1000)) as url:
        yield url


def request(
    url: str, data: bytes | None = None, method: str | None = None
) -> tuple[int, str, Message]:
    """The status, body and headers of a request (errors included)."""
    try:
        prepared = urllib.request.Request(url, data=data, method=method)
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def raw_request(url: str, head: str, body: bytes = b"", close_early: bool = False) -> bytes:
    """What the server answers to a request as written (``head`` without its blank
    line), over a socket of its own: what an HTTP client would refuse to send."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # surrogateescape: "\udcff" in ``head`` sends the byte 0xff.
        written = head.encode("utf-8", "surrogateescape")
        sock.sendall(written + b"\r\nConnection: close\r\n\r\n" + body)
        if close_early:
            return b""
        answer = b""
        # A server refusing a request it has not read whole closes with the rest
        # unread: the reset follows its answer.
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def current(db: Conn, service: str) -> tuple[Any, ...]:
    query = "SELECT status, current_task, latency_ms FROM system_status WHERE service_name = %s"
    row = db.execute(query, (service,)).fetchone()
    assert row is not None, f"no status for {service}"
    return tuple(row)


def history_rows(db: Conn) -> int:
    return int(one(db, "SELECT count(*) FROM system_status_history"))


def test_a_token_is_shown_once_and_only_its_hash_is_kept(db: Conn) -> None:
    token = admin.add_ping_token(db, "nightly-backup", note="cron on db1")
    assert token.startswith("ps_") and len(token) == 35
    stored = db.execute(
        "SELECT token_hash, token_prefix, service_name, note FROM pystatus.ping_tokens"
    )
    [(token_hash, prefix, service, note)] = stored.fetchall()
    assert bytes(token_hash) == hashlib.sha256(token.encode()).digest()
    assert prefix == token[:11] and service == "nightly-backup" and note == "cron on db1"
    dumped = db.execute("SELECT row_to_json(t)::text FROM pystatus.ping_tokens AS t").fetchone()
    assert dumped is not None and token[11:] not in dumped[0]
    [listed] = admin.ping_tokens(db)
    assert (listed.token_prefix, listed.service_name) == (prefix, "nightly-backup")


def test_ping_records_for_the_tokens_service_and_a_revoked_token_is_unknown(
    db: Conn, writer_dsn: str
) -> None:
    token = admin.add_ping_token(db, "nightly-backup")
    other = admin.add_ping_token(db, "nightly-backup")
    with psycopg.connect(writer_dsn, autocommit=True) as writer:
        pystatus.ping(writer, token, "down", "disk full")
        assert current(db, "nightly-backup") == ("down", "disk full", None)
        assert admin.remove_ping_token(db, token[:11]) == "nightly-backup"
        for refused in (token, "ps_" + "0" * 32, "", "not a token", token.upper()):
            with pytest.raises(UnknownToken, match=r"^unknown ping token$"):
                pystatus.ping(writer, refused)
        # Revoking one token leaves the service's others working.
        pystatus.ping(writer, other)
        assert current(db, "nightly-backup")[0] == "ok"
        # The writer cannot read the tokens nor make one.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute("SELECT * FROM pystatus.ping_tokens")
        with pytest.raises(NotAllowed):
            admin.add_ping_token(writer, "nightly-backup")


def test_bad_token_input_is_refused_with_the_reason(db: Conn) -> None:
    with pytest.raises(pystatus.InvalidServiceName):
        admin.add_ping_token(db, " padded ")
    with pytest.raises(pystatus.InvalidInput, match="1024 bytes"):
        admin.add_ping_token(db, "backup", note="x" * 1025)
    with pytest.raises(pystatus.InvalidInput, match="no ping token 'ps_00000000'"):
        admin.remove_ping_token(db, "ps_00000000")
    assert admin.ping_tokens(db) == []


def test_a_run_begun_with_start_records_its_length_as_latency(db: Conn, writer_dsn: str) -> None:
    token = admin.add_ping_token(db, "etl")
    with psycopg.connect(writer_dsn, autocommit=True) as writer:
        pystatus.ping(writer, token, "starting")
        writer.execute("SELECT pg_sleep(0.2)")
        pystatus.ping(writer, token, "ok")
        began, ended = db.execute(
            "SELECT heartbeat_timestamp FROM system_status_history ORDER BY heartbeat_timestamp"
        ).fetchall()
        status, _, latency = current(db, "etl")
        run_ms = (ended[0] - began[0]).total_seconds() * 1000
        assert status == "ok" and 200 <= latency <= run_ms
        # An explicit latency wins; a ping without a run before it has none.
        pystatus.ping(writer, token, "ok")
        assert current(db, "etl")[2] is None


def test_the_cli_adds_lists_and_revokes_tokens(
    dsn: str, db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(["tokens", "add", "nightly-backup", "--dsn", dsn, "--url", "http://ping.example"]) == 0
    )
    out = capsys.readouterr().out
    [token] = [line for line in out.splitlines() if line.startswith("ps_")]
    assert f"http://ping.example/ping/{token}/start" in out
    assert cli(["tokens", "list", "--dsn", dsn, "--format", "json"]) == 0
    listed = capsys.readouterr().out
    assert token[:11] in listed and token not in listed
    assert cli(["tokens", "remove", token[:11], "--dsn", dsn]) == 0
    assert "revoked" in capsys.readouterr().out
    assert admin.ping_tokens(db) == []
    assert cli(["tokens", "remove", token[:11], "--dsn", dsn]) == 1
    assert "no ping token" in capsys.readouterr().err


def test_pings_over_http_set_the_status_the_path_names(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "nightly-backup")
    url = f"{ingest}/ping/{token}"
    cases: list[tuple[str, bytes | None, tuple[Any, ...]]] = [
        ("", None, ("ok", None, None)),
        ("/fail", None, ("down", None, None)),
        ("/degraded?task=slow%20disk&latency_ms=12.5", None, ("degraded", "slow disk", 12.5)),
        ("/3", None, ("down", "exit code 3", None)),
        ("/0", None, ("ok", None, None)),
        ("/fail", b"copying...\nerror: disk full\n\n", ("down", "error: disk full", None)),
        ("/stopping", b"", ("stopping", None, None)),
    ]
    for path, body, expected in cases:
        status, text, _ = request(url + path, body)
        assert (status, text) == (200, "OK\n"), path
        assert current(db, "nightly-backup") == expected, path
    assert history_rows(db) == len(cases)


def test_curl_as_a_script_would_use_it(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "cron-report")
    url = f"{ingest}/ping/{token}"
    subprocess.run(["curl", "-fsS", "-m", "10", f"{url}/start"], check=True)
    assert current(db, "cron-report")[0] == "starting"
    done = subprocess.run(
        ["sh", "-c", f'false; curl -fsS -m 10 --data-binary "report failed" "{url}/$?"'],
        check=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout == "OK\n"
    status, task, latency = current(db, "cron-report")
    assert (status, task) == ("down", "report failed") and latency >= 0
    # -f: curl exits non-zero on a refused ping, so the script can tell.
    refused = subprocess.run(["curl", "-fsS", f"{ingest}/ping/ps_nothing"], capture_output=True)
    assert refused.returncode == 22


def test_unknown_revoked_and_malformed_tokens_get_the_same_answer(ingest: str, db: Conn) -> None:
    revoked = admin.add_ping_token(db, "backup")
    admin.remove_ping_token(db, revoked)
    answers = {
        request(f"{ingest}/ping/{token}")[:2]
        for token in (revoked, "ps_" + "f" * 32, "x", "ps_" + "a" * 200, "%C3%A9t%C3%A9")
    }
    assert answers == {(404, "not found\n")}
    assert history_rows(db) == 0


def test_bad_input_is_refused_and_nothing_is_written(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    url = f"{ingest}/ping/{token}"
    refusals = {
        "/fail?latency_ms=-1": (400, "latency_ms"),
        "?latency_ms=soon": (400, "latency_ms"),
        "?latency_ms=nan": (400, "latency_ms"),
        "/explode": (400, "unknown ping 'explode'"),
        "/256": (400, "invalid exit code '256'"),
        "/stale": (400, "unknown ping 'stale'"),
    }
    for path, (code, reason) in refusals.items():
        status, text, _ = request(url + path)
        assert status == code and reason in text, path
    status, text, _ = request(url + "/fail", b"x" * 1001)
    assert status == 413 and "1000 bytes" in text
    assert request(url, b"x" * 1000)[0] == 200
    status, text, _ = request(f"{ingest}/ping")
    assert status == 404
    assert history_rows(db) == 1


def test_every_text_a_ping_takes_is_made_one_clean_line(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    url = f"{ingest}/ping/{token}"
    cases: list[tuple[str, bytes | None, str | None]] = [
        # An escape sequence, a direction override and a tab (the terminal's, undone).
        ("?task=%1b%5b2J%e2%80%aeslow%09disk%0a", None, "[2J slow disk"),
        ("/fail", b"copying\n\x1b]0;owned\x07 disk \xe2\x80\x8bfull\n", "]0;owned disk full"),
        # Long: shortened as a body's line is, not refused.
        (f"?task={'x' * 5000}", None, "x" * 997 + "..."),
        # Invalid UTF-8 is replaced, as in a body.
        ("?task=%ff%fe%20broken", None, "\ufffd\ufffd broken"),
        # Nothing left once cleaned: the body's last line, else no task.
        ("?task=%00%1b%e2%80%8b", b"from the body\n", "from the body"),
        ("?task=%20%09", None, None),
    ]
    for path, body, task in cases:
        assert request(url + path, body)[:2] == (200, "OK\n"), path
        assert current(db, "backup")[1] == task, path


def test_exit_codes_are_ascii_digits_from_0_to_255(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    url = f"{ingest}/ping/{token}"
    refusals = {
        "/%C2%B2": "unknown ping '\xb2'",  # superscript two: a digit to str.isdigit()
        "/%E0%A5%A7": "unknown ping '\u0967'",  # Devanagari one: int() reads it as 1
        f"/{'9' * 5000}": "invalid exit code '9999",  # more than int() reads
        "/0256": "invalid exit code '0256': an exit code is 0 to 255",
        "/-1": "unknown ping '-1'",
    }
    for path, reason in refusals.items():
        status, text, _ = request(url + path)
        assert status == 400 and reason in text, path
    assert history_rows(db) == 0
    assert request(url + "/003")[0] == 200
    assert current(db, "backup")[:2] == ("down", "exit code 3")


def test_head_and_other_methods_record_nothing(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    url = f"{ingest}/ping/{token}"
    for path in ("", "/fail", "/0", "/start"):
        status, _, headers = request(url + path, method="HEAD")
        assert status == 405 and headers["Allow"] == "GET, POST", path
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        assert request(url + "/fail", method=method)[0] == 405, method
    # A script pinging with curl -I learns that nothing was recorded.
    headed = subprocess.run(["curl", "-fsSI", f"{url}/fail"], capture_output=True)
    assert headed.returncode == 22
    assert history_rows(db) == 0
    # HEAD asks nothing of the rate limit either: the GET after them passes.
    assert request(url)[0] == 200 and history_rows(db) == 1
    assert request(f"{ingest}/healthz", method="HEAD")[0] == 200


def test_odd_queries_and_paths_get_a_clear_4xx(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    url = f"{ingest}/ping/{token}"
    refusals = {
        "?task=a&task=b": (400, "task given 2 times: give it once"),
        "/fail?latency_ms=1&latency_ms=2": (400, "latency_ms given 2 times"),
        "?latency_ms=%EF%BC%91": (400, "invalid latency_ms"),  # a fullwidth one
        "?latency_ms=1_000": (400, "invalid latency_ms '1_000'"),
        "?latency_ms=%201": (400, "invalid latency_ms"),
        "?latency_ms=Infinity": (400, "invalid latency_ms"),
        f"?task={'x' * 20_000}": (414, "query string too long: the limit is 16384 bytes"),
        "/": (404, "Not Found"),  # not a redirect that records nothing yet looks fine to curl -f
        "/fail%00": (400, "unknown ping 'fail\\x00'"),
    }
    for path, (code, reason) in refusals.items():
        status, text, _ = request(url + path)
        assert status == code and reason in text, path
    # A token no token could be: refused like an unknown one, without asking the database.
    for odd in ("%00", "ps_%00", "%FF%FE", "ps_%1B%5B2J"):
        assert request(f"{ingest}/ping/{odd}")[:2] == (404, "not found\n"), odd
    # Parameters it does not know are left alone, as Healthchecks' pings do.
    assert request(url + "?rid=1&a=1&a=2&latency_ms=1.5e1")[0] == 200
    assert current(db, "backup") == ("ok", None, 15.0)
    assert history_rows(db) == 1


def test_malformed_requests_are_refused_by_the_server(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    path = f"/ping/{token}"
    malformed = [
        f"GET {path}?task={'x' * 1_000_000} HTTP/1.1\r\nHost: x",  # past the server's limit
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {'9' * 5000}",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: \u0661",  # Arabic-Indic one
        f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Filler: {'y' * 200_000}",
        f"GET {path}/\udcff\udcfe HTTP/1.1\r\nHost: x",  # bytes that are not UTF-8, unescaped
        f"GET {path}?task=\udcff HTTP/1.1\r\nHost: x",
    ]
    for head in malformed:
        assert raw_request(ingest, head).startswith(b"HTTP/1.1 400 "), head[:60]
    assert history_rows(db) == 0


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """What the HTTP server logs as errors (a traceback, for an exception in a request)."""
    handler = Collected()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_a_client_leaving_mid_body_records_nothing_and_logs_no_traceback(
    ingest: str, db: Conn, server_errors: list[logging.LogRecord]
) -> None:
    token = admin.add_ping_token(db, "backup")
    head = f"POST /ping/{token}/fail HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
    for _ in range(3):
        raw_request(ingest, head, b"only part", close_early=True)
    # The server goes on answering, and has handled the three by the time it records this.
    answer = raw_request(ingest, f"GET /ping/{token} HTTP/1.1\r\nHost: x")
    assert answer.startswith(b"HTTP/1.1 200 ")
    wait_for(lambda: history_rows(db) == 1)
    assert current(db, "backup")[0] == "ok"
    assert [record.getMessage() for record in server_errors] == []


def test_the_rate_limit_answers_429_alike_for_every_token(writer_dsn: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "chatty")
    with serving(create_app(writer_dsn, rate_per_minute=3)) as url:
        answered = [request(f"{url}/ping/{token}")[0] for _ in range(4)]
        assert answered == [200, 200, 200, 429]
        status, _, headers = request(f"{url}/ping/{token}")
        assert status == 429 and int(headers["Retry-After"]) >= 1
        unknown = [request(f"{url}/ping/ps_unknown")[0] for _ in range(4)]
        assert unknown == [404, 404, 404, 429]
        # Another token has its own allowance.
        other = admin.add_ping_token(db, "quiet")
        assert request(f"{url}/ping/{other}")[0] == 200
    assert history_rows(db) == 4


def test_the_rate_limiter_refills_with_time_and_forgets_the_oldest() -> None:
    limiter = RateLimiter(rate_per_minute=60, capacity=2)
    assert [limiter.wait_needed("a", now=0.0) for _ in range(60)] == [0.0] * 60
    assert limiter.wait_needed("a", now=0.0) == pytest.approx(1.0)
    assert limiter.wait_needed("a", now=1.5) == 0.0  # a second refills one ping
    limiter.wait_needed("b", now=2.0)
    limiter.wait_needed("c", now=2.0)
    assert list(limiter.buckets) == ["b", "c"]
    assert RateLimiter(0).wait_needed("a") == 0.0


def test_a_body_becomes_a_clean_task() -> None:
    assert task_from_body(b"step 1\nfailed:\tdisk \x1b[31mfull\x1b[0m\n\n") == (
        "failed: disk [31mfull [0m"
    )
    assert task_from_body(b"\n \n") is None
    assert task_from_body(b"\xff\xfe broken") == "\ufffd\ufffd broken"
    assert task_from_body(b"y" * 5000) == "y" * 997 + "..."


def test_concurrent_pings_are_each_recorded(ingest: str, db: Conn) -> None:
    tokens = [admin.add_ping_token(db, f"job-{n}") for n in range(8)]
    answers: list[int] = []

    def pings(token: str) -> None:
        for n in range(10):
            answers.append(request(f"{ingest}/ping/{token}?task=run%20{n}")[0])

    threads = [threading.Thread(target=pings, args=(t,)) for t in tokens for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [200] * 160
    assert history_rows(db) == 160
    assert one(db, "SELECT count(*) FROM system_status WHERE service_name LIKE 'job-%'") == 8


def test_the_ingest_login_is_held_to_its_allowances(ingest: str, db: Conn, writer_dsn: str) -> None:
    login = psycopg.conninfo.conninfo_to_dict(writer_dsn)["user"]
    admin.allow_service(db, str(login), "backup-*")
    allowed, other = admin.add_ping_token(db, "backup-db1"), admin.add_ping_token(db, "billing")
    assert request(f"{ingest}/ping/{allowed}")[0] == 200
    status, text, _ = request(f"{ingest}/ping/{other}")
    assert status == 403 and "may not heartbeat for service" in text
    assert one(db, "SELECT count(*) FROM system_status WHERE service_name = 'billing'") == 0


def test_ingest_refuses_to_run_as_the_owner(dsn: str, db: Conn, writer_dsn: str) -> None:
    with pytest.raises(NotAllowed, match="pystatus_writer login"):
        check_login(dsn)
    check_login(writer_dsn)  # a writer may
    with psycopg.connect(writer_dsn, autocommit=True) as writer:
        refuse_owner(writer)
    # A database that is not up yet does not stop it starting: pings answer 503 until it is.
    check_login(f"host=127.0.0.1 port={free_port()} user=nobody connect_timeout=1")


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of its own, so stopping it disturbs no other test."""
    with Cluster.temporary(cron_database=None) as running:
        with psycopg.connect(running.dsn(), autocommit=True) as admin_conn:
            admin_conn.execute("CREATE DATABASE app")
            admin_conn.execute("CREATE ROLE ingest LOGIN")
        migrations.apply(running.dsn("app"))
        with psycopg.connect(running.dsn("app"), autocommit=True) as admin_conn:
            admin_conn.execute("GRANT pystatus_writer TO ingest")
        yield running


def test_503_while_the_database_is_down_then_recorded_once_it_is_back(own_cluster: Cluster) -> None:
    owner_dsn = own_cluster.dsn("app")
    with psycopg.connect(owner_dsn, autocommit=True) as db:
        token = admin.add_ping_token(db, "backup")
    with serving(create_app(f"{owner_dsn} user=ingest", rate_per_minute=0)) as url:
        assert request(f"{url}/ping/{token}")[0] == 200
        own_cluster.stop()
        try:
            status, text, headers = request(f"{url}/ping/{token}/fail")
            assert status == 503 and "not recorded" in text and headers["Retry-After"] == "5"
            assert request(f"{url}/healthz")[0] == 503
        finally:
            own_cluster.start()
        # The pooled connections died with the server; new ones are made as soon as
        # it is back, and the ping is recorded.
        wait_for(lambda: request(f"{url}/ping/{token}/fail")[:2] == (200, "OK\n"))
        assert request(f"{url}/healthz")[0] == 200
    with psycopg.connect(owner_dsn, autocommit=True) as db:
        statuses = db.execute(
            "SELECT status FROM system_status_history ORDER BY heartbeat_timestamp"
        ).fetchall()
    # The refused ping left nothing behind: history holds the two recorded.
    assert statuses == [("ok",), ("down",)]


def test_a_ping_on_a_killed_connection_is_sent_again_on_a_new_one(ingest: str, db: Conn) -> None:
    token = admin.add_ping_token(db, "backup")
    assert request(f"{ingest}/ping/{token}")[0] == 200
    killed = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'pystatus-ingest' AND datname = current_database()"
    ).fetchone()
    assert killed is not None and killed[0] >= 1
    assert request(f"{ingest}/ping/{token}/fail")[:2] == (200, "OK\n")
    assert current(db, "backup")[0] == "down"


def test_pings_are_counted_by_outcome_and_each_refusal_logged_by_prefix(
    ingest: str, db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    token = admin.add_ping_token(db, "nightly-backup")
    caplog.set_level(logging.INFO, logger="pystatus")
    assert request(f"{ingest}/ping/{token}")[0] == 200
    assert request(f"{ingest}/ping/{token}/fail")[0] == 200
    assert request(f"{ingest}/ping/{token}/%C2%B2")[0] == 400
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # same prefix, other secret
    assert request(f"{ingest}/ping/{wrong}")[0] == 404
    assert request(f"{ingest}/ping/{token}", data=b"x" * 2000)[0] == 413
    status, page, headers = request(f"{ingest}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    counts = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("pystatus_ingest_pings_total{")
    }
    assert counts == {
        "recorded": 2,
        "bad_request": 1,
        "not_allowed": 0,
        "unknown_token": 1,
        "method_not_allowed": 0,
        "body_too_large": 1,
        "query_too_long": 0,
        "rate_limited": 0,
        "database_unavailable": 0,
    }
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=page, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 3
    assert all(m.startswith(f"ping {token[:11]} refused: 4") for m in refused), refused
    assert all(token[11:] not in m and wrong[11:] not in m for m in refused)
