"""What `make demo` prints, computed from a real synthesized template."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_cdk.assertions import Template

from cli.summary import main, summarize


def test_summary_lists_resources_alarms_and_mail_addresses(template: Template) -> None:
    text = summarize(template.to_json(), datetime(2026, 11, 28, 0, 30, tzinfo=UTC))
    assert "AWS::S3::Bucket" in text
    assert "SchoolBackup-schedule-dead-letters" in text
    assert "a dump command failed, timed out or was cancelled on a server" in text
    assert "it-admin@example.org" in text
    assert "it-deputy@example.org" in text


def test_summary_shows_next_three_runs_of_each_schedule_in_its_timezone() -> None:
    template = {
        "Resources": {
            "Dump": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "Name": "SchoolBackup-dump",
                    "ScheduleExpression": "cron(0 2 * * ? *)",
                    "ScheduleExpressionTimezone": "Europe/Zurich",
                },
            }
        }
    }
    text = summarize(template, datetime(2026, 11, 28, 0, 30, tzinfo=UTC))
    assert "SchoolBackup-dump: cron(0 2 * * ? *) (Europe/Zurich)" in text
    assert "next: Sat 2026-11-28 02:00 CET, Sun 2026-11-29 02:00 CET, Mon 2026-11-30 02:00 CET" in text
    assert "(nobody: no e-mail subscription!)" in text


def test_summary_without_template_explains_what_to_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([str(tmp_path / "missing.json")]) == 1
    assert "run `make demo`" in capsys.readouterr().err
