"""Database URLs: passwords are dropped from what is shown and stored; bad URLs are refused."""

from __future__ import annotations

import pytest

from mmsearch.errors import ConfigError
from mmsearch.store.database import lock_key, parse, safe_url, same_database


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql+psycopg://u:s3cret@h:5432/d", "postgresql+psycopg://u@h:5432/d"),
        ("postgresql://u:p%40ss%3Aword@h/d?sslmode=require", "postgresql://u@h/d?sslmode=require"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
    ],
)
def test_safe_url_drops_the_password(given: str, shown: str) -> None:
    assert safe_url(given) == shown
    assert "s3cret" not in safe_url(parse(given)) and "p%40ss" not in safe_url(given)


def test_parse_and_compare() -> None:
    url = parse("postgresql://u:pw@h:1/d")
    assert url.drivername == "postgresql+psycopg" and url.password == "pw"
    assert same_database(url, parse("postgresql+psycopg://u@h:1/d"))
    assert not same_database(url, parse("postgresql+psycopg://u@h:1/other"))
    key = lock_key(url, "writer")
    assert key == lock_key(parse("postgresql://x:y@elsewhere/d"), "writer")  # per database name
    assert key != lock_key(url, "schema") and -(2**63) <= key < 2**63


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://u:s3cret@h/d",
        "postgresql+psycopg://u:s3cret@h:5432",
        "postgresql+psycopg://u:s3cret@h:port/d",
    ],
)
def test_bad_urls_are_refused_without_showing_the_password(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(bad)
    assert "s3cret" not in str(err.value)


def test_first_line_keeps_the_reason_and_drops_the_sql() -> None:
    from mmsearch.store.database import first_line

    long = ValueError("value too long\n[SQL: INSERT INTO segments ...]\n[parameters: (1, 2)]")
    assert first_line(long) == "value too long"
    assert first_line(ValueError("")) == "ValueError"
