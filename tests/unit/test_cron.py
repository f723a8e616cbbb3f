"""EventBridge cron parsing and next run times (what the demo and the config validation rely on)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from infra.cron import CronError, parse_cron

ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)


def runs(expression: str, count: int = 3, after: datetime = NOW) -> list[str]:
    return [r.strftime("%Y-%m-%d %H:%M %Z") for r in parse_cron(expression).next_runs(after, count, ZURICH)]


def test_daily_at_two_in_zurich_time() -> None:
    assert runs("cron(0 2 * * ? *)") == [
        "2026-11-28 02:00 CET",
        "2026-11-29 02:00 CET",
        "2026-11-30 02:00 CET",
    ]


def test_sundays_and_mondays_by_name() -> None:
    assert runs("cron(0 3 ? * SUN *)", 2) == ["2026-11-29 03:00 CET", "2026-12-06 03:00 CET"]
    assert runs("cron(30 7 ? * MON *)", 1) == ["2026-11-30 07:30 CET"]


def test_first_saturday_of_january_and_july_crosses_summer_time() -> None:
    assert runs("cron(0 6 ? 1,7 SAT#1 *)") == [
        "2027-01-02 06:00 CET",
        "2027-07-03 06:00 CEST",
        "2028-01-01 06:00 CET",
    ]


def test_last_day_nearest_weekday_and_last_friday() -> None:
    assert runs("cron(0 9 L * ? *)", 2) == ["2026-11-30 09:00 CET", "2026-12-31 09:00 CET"]
    # 2027-05-15 is a Saturday: 15W runs on Friday the 14th.
    assert runs("cron(0 9 15W 5 ? *)", 1) == ["2027-05-14 09:00 CEST"]
    assert runs("cron(0 9 ? * 6L *)", 1) == ["2026-12-25 09:00 CET"]


def test_steps_ranges_and_weekday_ranges() -> None:
    assert runs("cron(0/30 9-10 ? * MON-FRI *)", 4) == [
        "2026-11-30 09:00 CET",
        "2026-11-30 09:30 CET",
        "2026-11-30 10:00 CET",
        "2026-11-30 10:30 CET",
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 2 * * *", "must be written as cron("),
        ("cron(0 2 * * ?)", "needs 6"),
        ("cron(0 2 * * * *)", "exactly one of"),
        ("cron(0 2 ? * ? *)", "exactly one of"),
        ("cron(60 2 * * ? *)", "minutes: 60 is outside 0-59"),
        ("cron(0 2 32 * ? *)", "day-of-month: 32"),
        ("cron(0 2 ? * FUN *)", "not a number or name"),
        ("cron(0 2 ? * SAT#6 *)", "occurrence 1-5"),
        ("cron(0 2 ? 13 MON *)", "month: 13"),
        ("cron(0 5-2 * * ? *)", "runs backwards"),
        ("cron(0/0 2 * * ? *)", "step"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(")):
        parse_cron(expression)
