"""The restore drill in the weekly mail and its problems: when the last drill ran, its result and the
achieved recovery time against the target; a failed, slow, untidy or overdue drill is a problem of the
week (with its alarm under it), in both languages."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import timedelta

import pytest

from lambdas.common.messages import say
from lambdas.common.rendering import drill_summary, render_html, render_text
from lambdas.common.week import DrillStatus, HealthReport
from tests.unit.checks.test_week_mail import NOW, _alarm, week
from tests.unit.test_messages import english_words

WHEN = (
    NOW - timedelta(days=23) + timedelta(minutes=30)
)  # Saturday 7 November 2026, 07:00 UTC: 08:00 in Zurich
RECORD = "reports/drills/20261107T0700Z.json"


def _drill(**changes: object) -> DrillStatus:
    drill = DrillStatus(when=WHEN, passed=True, rto_minutes=74.5, rto_target_minutes=240, record=RECORD)
    return replace(drill, **changes)  # type: ignore[arg-type]


def _with(language: str, drill: DrillStatus | None, *, enabled: bool = True) -> HealthReport:
    return replace(week(language), drill=drill, drill_enabled=enabled)


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_passed_drill_is_shown_with_its_rto_against_the_target_and_is_no_problem(language: str) -> None:
    report = _with(language, _drill())
    assert report.ok, report.todo()
    text = render_text(report)
    summary = say("week.drill.passed", language, when="07.11.2026 08:00", rto="74.5", target=240)
    assert f"{say('week.drill.section', language)}: {summary}" in text.splitlines()
    page = render_html(report)
    assert html.escape(summary) in page
    if language == "en":
        assert (
            "Restore drill: 07.11.2026 08:00: passed, the school was working again after 74.5 minutes" in text
        )
    else:
        assert (
            "Wiederherstellungsübung: 07.11.2026 08:00: bestanden, die Schule lief nach 74.5 Minuten" in text
        )
        assert english_words(text) == []


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_failed_drill_is_a_problem_that_says_what_failed_and_what_to_do(language: str) -> None:
    failed = _drill(
        passed=False,
        rto_minutes=None,
        failed_phases=(("db-check", "school answered '0' (expected a value other than 0)"),),
    )
    report = _with(language, failed)
    [problem] = report.problems()
    assert problem.cause == "drill"
    assert problem.title == say("week.drill.title", language)
    assert problem.headline == say("week.drill.failed", language, when="07.11.2026 08:00")
    assert problem.next_step is not None and problem.next_step.command == "backupctl drill status"
    assert problem.next_step.link.endswith("#/statemachines")
    if language == "en":
        assert problem.consequences == ("Db-check: school answered '0' (expected a value other than 0)",)
    else:  # the record's details are English data: the German mail names the record instead
        assert problem.consequences == (say("week.drill.details", language, record=RECORD),)
    text = render_text(report)
    assert say("week.drill.failed_summary", language, when="07.11.2026 08:00") in text
    assert render_html(report).count(html.escape(problem.headline)) == 1
    if language == "de":
        assert english_words(text) == []


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_drill_slower_than_the_target_is_a_problem(language: str) -> None:
    report = _with(language, _drill(rto_minutes=301.0))
    [problem] = report.problems()
    assert problem.headline == say(
        "week.drill.slow", language, when="07.11.2026 08:00", rto="301", target=240
    )
    summary = say("week.drill.slow_summary", language, when="07.11.2026 08:00", rto="301", target=240)
    assert summary in render_text(report)


def test_a_drill_that_left_resources_behind_is_a_problem_that_lists_them() -> None:
    report = _with("en", _drill(leftovers=("i-0drill123", "sb-drill-20261107t0700z-0")))
    [problem] = report.problems()
    assert problem.headline.startswith("The restore drill of 07.11.2026 08:00 passed, but left resources")
    assert problem.consequences == (
        "Not yet deleted (the daily cleanup removes it): i-0drill123, sb-drill-20261107t0700z-0",
    )
    assert drill_summary(report).endswith("; 2 resource(s) not deleted")


def test_an_overdue_drill_is_a_problem_while_the_drill_is_on_and_history_when_it_is_off() -> None:
    old = _drill(when=NOW - timedelta(days=215))
    [problem] = _with("en", old).problems()
    assert problem.headline.startswith("The last restore drill ran on ")
    assert "more than half a year ago" in problem.headline
    assert problem.next_step is not None and problem.next_step.command == "backupctl drill start"
    assert _with("en", old, enabled=False).ok
    assert _with("en", _drill(when=NOW - timedelta(days=200))).ok  # within half a year and a month


@pytest.mark.parametrize(
    ("enabled", "line"),
    [
        (True, "Restore drill: none recorded yet ('backupctl drill start' runs one now)"),
        (False, "Restore drill: switched off (restore_drill.enabled is false)"),
    ],
)
def test_without_a_drill_the_section_says_why(enabled: bool, line: str) -> None:
    report = _with("en", None, enabled=enabled)
    assert report.ok  # a school that just switched the drill on waits for its first
    assert line in render_text(report).splitlines()


def test_the_drill_alarm_stands_under_the_drill_problem_with_its_reason_in_words() -> None:
    alarm = _alarm(
        "DrillFailed", WHEN + timedelta(hours=2), {"recentDatapoints": [1.0], "threshold": 0.0}, "en"
    )
    report = replace(_with("en", _drill(passed=False, rto_minutes=None)), alarms=(alarm,))
    [problem] = report.problems()
    assert problem.cause == "drill"
    assert any(
        "SchoolBackup-DrillFailed" in line and "the restore drill failed" in line
        for line in problem.consequences
    )
