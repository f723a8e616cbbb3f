"""The IAM review in the weekly mail: its section (month, counts, the high findings with what to do), and a
new high finding as a problem of the week, in both languages."""

from __future__ import annotations

import html
from dataclasses import replace

import pytest

from lambdas.common.messages import say
from lambdas.common.rendering import render_html, render_text
from lambdas.common.week import IamFindingLine, IamReviewStatus
from tests.unit.checks.test_week_mail import week
from tests.unit.test_messages import english_words

ADMIN = IamFindingLine(
    "admin-access", "arn:aws:iam::123456789012:user/frank", "has AdministratorAccess attached"
)
NO_MFA = IamFindingLine(
    "console-user-without-mfa",
    "arn:aws:iam::123456789012:user/alice",
    "signs in to the console with a password and has no MFA device",
)


def _review(*, new: tuple[IamFindingLine, ...] = ()) -> IamReviewStatus:
    return IamReviewStatus(
        month="2026-11",
        record="reports/iam/2026-11.json",
        counts={"high": 2, "medium": 1, "low": 0},
        high=(ADMIN, NO_MFA),
        new_high=new,
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_section_lists_the_high_findings_with_what_to_do_but_known_ones_are_no_problem(
    language: str,
) -> None:
    report = replace(week(language), iam_review=_review())
    assert report.ok, report.todo()
    text = render_text(report)
    summary = say("iam.summary", language, month="2026-11", high=2, medium=1, low=0)
    assert f"{say('iam.section', language)}: {summary}" in text
    todo = say("iam.todo.admin-access", language)
    assert f"{say('mail.what_to_do', language)}: {todo}" in text
    assert html.escape(summary) in render_html(report)
    if language == "en":
        assert " - Administrator access – user/frank: has AdministratorAccess attached. What to do: " in text
    else:
        assert " - Administratorrechte bei user/frank. Was tun: " in text
        assert english_words(text) == []


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_new_high_finding_is_a_problem_of_the_week(language: str) -> None:
    report = replace(week(language), iam_review=_review(new=(NO_MFA,)))
    [problem] = report.problems()
    assert problem.cause == "iam-new-high"
    assert problem.title == say("iam.finding_title", language, month="2026-11")
    assert problem.headline == say("iam.new_high_one", language)
    assert problem.next_step is not None and problem.next_step.command == "backupctl iam-review --last"
    [line] = problem.consequences
    assert say("iam.todo.console-user-without-mfa", language) in line
    assert f"({say('iam.new', language, n=1)})" in render_text(report)


def test_without_a_review_the_section_says_when_it_runs() -> None:
    report = week("en")
    assert "IAM review: none recorded yet (it runs on the 1st of each month)" in render_text(report)
