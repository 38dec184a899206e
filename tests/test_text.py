"""Free text: the cleaning rule in Python and in SQL (pystatus.clean_text), and the
escaping of everything the CLI prints for a terminal."""

from __future__ import annotations

import io
import logging
import unicodedata
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystatus.names import clean_text
from pystatus.output import TerminalSafeFormatter, terminal_safe
from tests.helpers import one

Conn = psycopg.Connection[Any]

# Every character the rule names, at the edges of its ranges, with neighbours it
# does not name.
EDGES = (
    "\x01\x08\t\n\r\x0e\x1f\x7f\x80\x85\x9f\xa0\xa1\xad\u034f\u061c\u115f\u1160\u1680"
    "\u17b4\u17b5\u180e\u1fff\u2000\u200a\u200b\u200f\u2010\u2027\u2028\u2029\u202a\u202e"
    "\u202f\u205f\u2060\u2064\u2065\u2066\u2069\u206a\u3000\u3164\ufeff\uffa0\ufffd"
    " ab.é🚀"
)


def test_clean_text_makes_one_short_printable_line() -> None:
    assert clean_text("a\x00b\x1b[31mc\td\u200be\ud800f\n\n  g ", 200) == "a b [31mc d e f g"
    assert clean_text("\u202e\u2066 evil \u2069\r\n", 200) == "evil"
    assert clean_text("\x1b\x9b\x7f", 200) == ""
    long = clean_text("x" * 5000, 200)
    assert len(long) == 200 and long.endswith("...")
    # Shortened at a space, the space is not kept before the dots.
    assert clean_text("abcdef ghij", 10) == "abcdef..."


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        # PostgreSQL's text cannot hold NUL nor lone surrogates (Python makes them spaces).
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        st.text(st.sampled_from(EDGES)),
        st.text(st.sampled_from(EDGES), min_size=60, max_size=200),
    )
)
def test_the_python_cleaning_rule_agrees_with_the_database(db: Conn, text: str) -> None:
    # A limit as long as the text: cleaning never lengthens it, so only the rule is compared.
    assert clean_text(text, len(text)) == one(db, "SELECT pystatus.clean_text(%s)", [text])


def test_terminal_safe_escapes_what_a_terminal_acts_on() -> None:
    assert terminal_safe("a\x1b[2Jb\x07") == "a\\x1b[2Jb\\x07"
    assert terminal_safe("\x00\x7f\x9b\x85") == "\\x00\\x7f\\x9b\\x85"
    assert terminal_safe("ok\u202eko\u2066\u200b\ufeff") == "ok\\u202eko\\u2066\\u200b\\ufeff"
    assert terminal_safe("tag\U000e0041\ud800\u2028") == "tag\\U000e0041\\ud800\\u2028"
    assert terminal_safe("line 1\n\tline 2\r") == "line 1\\x0a\\x09line 2\\x0d"
    # Messages keep their lines and tabs, nothing else.
    assert terminal_safe("line 1\n\tline 2\r\x1b", lines=True) == "line 1\n\tline 2\\x0d\\x1b"
    # Printable text, markup-like included, is left as it is.
    for text in ("été 🚀 [red]x[/red] C:\\backup", "\xa0\u3000", "日本語"):
        assert terminal_safe(text) == text


@given(st.text())
def test_terminal_safe_leaves_no_control_or_format_character(text: str) -> None:
    shown = terminal_safe(text)
    assert not [c for c in shown if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
    shown.encode("utf-8")  # printable as UTF-8: no lone surrogate is left either


def test_log_records_are_terminal_safe() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TerminalSafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.test_text")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("ping %s refused: %s", "ps_\x1b]0;owned\x07", "line\nnext")
        try:
            raise ValueError("\x1b[2J")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    logged = out.getvalue()
    assert "ping ps_\\x1b]0;owned\\x07 refused: line\nnext\n" in logged
    assert "ValueError: \\x1b[2J" in logged and "Traceback" in logged
    assert "\x1b" not in logged and "\x07" not in logged
