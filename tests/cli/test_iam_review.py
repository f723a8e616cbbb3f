"""backupctl iam-review against moto: the newest record (--last) in English and German, --json, the exit
status (1 with high findings), no record yet, and the run of the deployed function by its contract name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from tests.cli.conftest import BUCKET, Result
from tests.unit.test_messages import english_words

FINDINGS = [
    {
        "kind": "console-user-without-mfa",
        "principal": "arn:aws:iam::123456789012:user/alice",
        "detail": "signs in to the console with a password and has no MFA device",
        "severity": "high",
    },
    {
        "kind": "access-key-old",
        "principal": "arn:aws:iam::123456789012:user/carol",
        "detail": "access key 1 was created or last rotated on 2026-05-15, 200 days ago (at most 90)",
        "severity": "medium",
    },
]


def _record(month: str, findings: list[dict[str, Any]]) -> None:
    record = {"month": month, "generated_at": f"{month}-01T07:00:03Z", "findings": findings, "new_high": []}
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"reports/iam/{month}.json", Body=json.dumps(record))


def test_last_shows_the_newest_review_with_what_to_do_and_exits_1_on_a_high_finding(
    aws: None, cli: Callable[..., Result]
) -> None:
    _record("2026-11", [])
    _record("2026-12", FINDINGS)
    result = cli("iam-review", "--last")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "IAM review 2026-12 (made 2026-12-01T07:00:03Z)"
    assert "[high] Console user without MFA – user/alice" in lines
    assert "    signs in to the console with a password and has no MFA device" in lines
    assert any(line.startswith("    What to do: Have the user add an MFA device") for line in lines)
    assert "1 high-risk finding(s) need you." in lines

    as_json = cli("iam-review", "--last", "--json")
    assert as_json.exit_code == 1
    assert as_json.json()["findings"] == FINDINGS
    assert as_json.json()["record"] == f"s3://{BUCKET}/reports/iam/2026-12.json"


def test_last_without_high_findings_exits_0(aws: None, cli: Callable[..., Result]) -> None:
    _record("2026-12", FINDINGS[1:])
    result = cli("iam-review", "--last")
    assert result.exit_code == 0, result.stderr
    assert "[medium] Access key older than 90 days – user/carol" in result.stdout


def test_last_in_german(aws: None, cli: Callable[..., Result], german_config: Path) -> None:
    _record("2026-12", FINDINGS)
    result = cli("--config", str(german_config), "iam-review", "--last")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "IAM-Überprüfung 2026-12 (erstellt 2026-12-01T07:00:03Z)"
    assert "[hoch] Konsolen-Benutzer ohne MFA bei user/alice" in lines
    assert not any("signs in" in line for line in lines)  # the English detail is left out
    assert english_words(result.stdout.replace("IAM review", "")) == []


def test_last_without_any_review_says_so(aws: None, cli: Callable[..., Result]) -> None:
    result = cli("iam-review", "--last")
    assert result.exit_code == 1
    assert f"No IAM review is recorded yet in s3://{BUCKET}/reports/iam/" in result.stderr


def test_iam_review_runs_the_deployed_function_by_its_contract_name(
    aws: None, cli: Callable[..., Result]
) -> None:
    result = cli("iam-review")
    assert result.exit_code == 1
    assert "AWS refused Invoke" in result.stderr and "SchoolBackup-iam-review" in result.stderr


def test_status_shows_the_newest_review_and_a_new_high_finding_is_a_problem(
    school: Any, cli: Callable[..., Result]
) -> None:
    import time_machine

    from tests.cli.test_status import NOW, _healthy

    with time_machine.travel(NOW, tick=False):
        _healthy(school)
        record = {
            "month": "2026-11",
            "generated_at": "2026-11-01T07:00:03Z",
            "findings": FINDINGS,
            "counts": {"high": 1, "medium": 1, "low": 0},
            "new_high": [{"kind": FINDINGS[0]["kind"], "principal": FINDINGS[0]["principal"]}],
        }
        boto3.client("s3").put_object(Bucket=BUCKET, Key="reports/iam/2026-11.json", Body=json.dumps(record))
        result = cli("status", "--json")
        human = cli("status")
    assert result.exit_code == 1
    status = result.json()
    assert status["iam_review"]["month"] == "2026-11"
    assert status["iam_review"]["counts"] == {"high": 1, "medium": 1, "low": 0}
    [finding] = status["findings"]
    assert finding["cause"] == "iam-new-high"
    assert finding["headline"] == "1 new high-risk finding since last month's review."
    assert finding["next_step"]["command"] == "backupctl iam-review --last"
    assert finding["consequences"][0].startswith(
        "Console user without MFA – user/alice: signs in to the console with a password and has no MFA device. "
        "What to do: Have the user add an MFA device"
    )
    assert "Last IAM review: 2026-11: 1 high, 1 medium, 0 low (1 new since last month)" in human.stdout
