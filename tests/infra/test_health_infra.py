"""The health construct: alarms (metric, threshold, missing data, SNS action), roles, schedules, dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import assert_has_resource, resources_of, role_statements, synth


def _alarm(template: Template, suffix: str) -> dict[str, Any]:
    found = [
        r["Properties"]
        for r in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if json.dumps(r["Properties"].get("AlarmName", "")).endswith(f'-{suffix}"')
        or str(r["Properties"].get("AlarmName", "")).endswith(f"-{suffix}")
    ]
    assert len(found) == 1, suffix
    return found[0]


def _targets_topic(props: dict[str, Any]) -> bool:
    return any("AlarmsTopic" in json.dumps(action) for action in props["AlarmActions"])


@pytest.mark.parametrize(("kind", "hours"), [("dump", 26), ("rds", 26), ("ami", 192)])
def test_backup_age_alarm_per_kind_watches_worst_age_and_breaches_on_missing_data(
    template: Template, kind: str, hours: int
) -> None:
    props = _alarm(template, f"{kind}-backup-age")
    assert props["MetricName"] == "WorstNewestGoodBackupAgeHours"
    assert props["Namespace"] == "schoolbackup"
    assert props["Dimensions"] == [{"Name": "Kind", "Value": kind}]
    assert props["Threshold"] == hours
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["TreatMissingData"] == "breaching"
    # Two of two daily periods: the minutes around verify's daily run can't raise a false alarm.
    assert props["Period"] == 86400
    assert props["EvaluationPeriods"] == 2
    assert props["DatapointsToAlarm"] == 2
    assert _targets_topic(props)
    if kind == "dump":  # the dump is a Run Command on the server: no Lambda to look at
        assert "Lambda" not in props["AlarmDescription"]
        for words in ("Systems Manager, Run Command, Command history", "/schoolbackup/SchoolBackup/dump"):
            assert words in props["AlarmDescription"]
    else:
        job = {"rds": "rds_snapshot", "ami": "ami_backup"}[kind]
        assert f"run that job again (backupctl run {job})" in props["AlarmDescription"]


@pytest.mark.parametrize(
    ("suffix", "metric", "threshold", "operator"),
    [
        ("RestoreTestFailed", "RestoreTestPassed", 1, "LessThanThreshold"),
        ("VerificationFailed", "VerificationFailures", 0, "GreaterThanThreshold"),
        ("RdsSnapshotQuota", "RdsManualSnapshotQuotaPercent", 80, "GreaterThanThreshold"),
    ],
)
def test_check_alarms_have_metric_threshold_and_topic(
    template: Template, suffix: str, metric: str, threshold: int, operator: str
) -> None:
    props = _alarm(template, suffix)
    assert props["MetricName"] == metric
    assert props["Threshold"] == threshold
    assert props["ComparisonOperator"] == operator
    assert props["TreatMissingData"] == "notBreaching"
    assert _targets_topic(props)
    assert len(props["AlarmDescription"]) > 80


@pytest.mark.parametrize("job", ["verify", "restore_test", "report", "rds_snapshot", "ami_backup"])
def test_every_function_has_an_error_alarm(template: Template, job: str) -> None:
    props = _alarm(template, f"{job}-errors")
    assert props["MetricName"] == "Errors"
    assert props["Namespace"] == "AWS/Lambda"
    assert props["Threshold"] == 0
    assert _targets_topic(props)
    assert f"The schoolbackup job {job} failed" in props["AlarmDescription"]
    assert "Lambda console" in props["AlarmDescription"]


def _policy_of(template: Template, job: str) -> list[dict[str, Any]]:
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        if logical_id.startswith(f"Functions{job.replace('_', '')}Role"):
            statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
            return statements
    raise AssertionError(f"no policy for {job}")


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for s in statements:
        found.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return found


def _puts(template: Template, job: str) -> list[str]:
    """The resources ``job`` may PutObject to; each only as create-only (If-None-Match required)."""
    statements = _policy_of(template, job)
    puts = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert all(s.get("Condition") == {"Null": {"s3:if-none-match": "false"}} for s in puts), puts
    return [json.dumps(s["Resource"]) for s in puts]


def test_restore_test_and_report_write_only_their_own_records_and_verify_writes_nothing(
    template: Template,
) -> None:
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in _actions(_policy_of(template, "verify")))
    [restore_test] = _puts(template, "restore_test")
    assert restore_test.endswith('/reports/restore-tests/*"]]}')
    [report] = _puts(template, "report")
    assert report.endswith('/reports/weekly/*"]]}')
    for job in ("restore_test", "report"):
        assert not any(a.startswith("s3:Delete") for a in _actions(_policy_of(template, job)))


def test_report_may_publish_to_and_read_the_subscriptions_of_only_the_alarm_topic(template: Template) -> None:
    statements = _policy_of(template, "report")
    on_topic = [s for s in statements if "sns:" in json.dumps(s["Action"])]
    assert len(on_topic) == 1
    assert sorted(on_topic[0]["Action"]) == ["sns:ListSubscriptionsByTopic", "sns:Publish"]
    assert "AlarmsTopic" in json.dumps(on_topic[0]["Resource"])
    assert {"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarmHistory"} <= _actions(statements)
    assert "cloudwatch:PutMetricData" not in _actions(statements)


def test_schedules_use_the_configured_defaults(template: Template) -> None:
    for job, expression in (
        ("verify", "cron(30 6 * * ? *)"),
        ("restore-test", "cron(0 7 ? * MON *)"),
        ("report", "cron(30 7 ? * MON *)"),
    ):
        assert_has_resource(
            template,
            "AWS::Scheduler::Schedule",
            {
                "Name": Match.string_like_regexp(f"-{job}$"),
                "ScheduleExpression": expression,
                "ScheduleExpressionTimezone": "Europe/Zurich",
            },
        )


def test_dashboard_shows_age_per_source_with_a_search_expression(template: Template) -> None:
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "SEARCH(" in body
    assert "NewestGoodBackupAgeHours" in body
    assert "RestoreTestDurationSeconds" in body


def test_restore_test_reads_dumps_and_its_own_records_only(template: Template) -> None:
    # It lists and reads dumps/ (pick, check) and reads back its own record when a run is repeated.
    statements = _policy_of(template, "restore_test")
    gets = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert len(gets) == 1
    resources = gets[0]["Resource"] if isinstance(gets[0]["Resource"], list) else [gets[0]["Resource"]]
    ends = sorted(json.dumps(r).rsplit("/", 2)[-2] for r in resources)
    assert ends == ["dumps", "restore-tests"]
    lists = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert len(lists) == 1
    assert lists[0]["Condition"] == {"StringLike": {"s3:prefix": ["dumps/*", "reports/restore-tests/*"]}}


def test_report_reads_dumps_and_restore_test_records(template: Template) -> None:
    statements = _policy_of(template, "report")
    lists = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert lists[0]["Condition"] == {
        "StringLike": {
            "s3:prefix": [
                "dumps/*",
                "reports/restore-tests/*",
                "reports/weekly/*",
                "reports/iam/*",
                "reports/drills/*",
            ]
        }
    }


def test_verify_and_report_get_the_retention_policy_of_the_configuration() -> None:
    t = synth(
        {
            "retention": {
                "keep_daily": 5,
                "keep_weekly": 2,
                "keep_monthly": 1,
                "max_age_days": 60,
                "min_keep": 2,
            }
        }
    )
    expected = {
        "KEEP_DAILY": "5",
        "KEEP_WEEKLY": "2",
        "KEEP_MONTHLY": "1",
        "MAX_AGE_DAYS": "60",
        "MIN_KEEP": "2",
    }
    for fn in resources_of(t, "AWS::Lambda::Function").values():
        handler = fn["Properties"]["Handler"]
        if handler in ("lambdas.verify.handler.handler", "lambdas.report.handler.handler"):
            variables = fn["Properties"]["Environment"]["Variables"]
            assert {k: variables[k] for k in expected} == expected, handler


OFFSITE = {"enabled": True, "region": "eu-central-1", "kinds": ["dump", "rds", "ami"]}


@pytest.fixture(scope="module")
def offsite_template() -> Template:
    return synth(offsite=OFFSITE)  # with cdk-nag: no open finding


def _joined(value: Any) -> str:
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in value["Fn::Join"][1])
    return str(value)


@pytest.mark.parametrize("handler", ["lambdas.verify.handler.handler", "lambdas.report.handler.handler"])
def test_verify_and_report_read_only_the_copied_dumps_and_decrypt_with_the_offsite_key_through_s3(
    offsite_template: Template, handler: str
) -> None:
    statements = role_statements(offsite_template, handler)
    bucket = "arn:<AWS::Partition>:s3:::schoolbackup-offsite-<AWS::AccountId>-eu-central-1"
    listing, reading = statements["ListOffsiteDumps"], statements["ReadOffsiteDumps"]
    assert (listing["Action"], _joined(listing["Resource"])) == ("s3:ListBucket", bucket)
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["dumps/*"]}}
    assert (reading["Action"], _joined(reading["Resource"])) == ("s3:GetObject", f"{bucket}/dumps/*")
    key = statements["DecryptOffsiteDumps"]
    assert key["Action"] == "kms:Decrypt"
    assert _joined(key["Resource"]) == "arn:<AWS::Partition>:kms:eu-central-1:<AWS::AccountId>:key/*"
    assert key["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/schoolbackup-offsite"},
        "StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"},
    }


def test_offsite_copies_have_their_own_age_alarms_per_copied_kind_with_the_region(
    offsite_template: Template, template: Template
) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources_of(offsite_template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith("-backup-age-offsite")
    }
    assert set(alarms) == {f"SchoolBackup-{k}-backup-age-offsite" for k in ("dump", "rds", "ami")}
    rds = alarms["SchoolBackup-rds-backup-age-offsite"]
    assert rds["MetricName"] == "WorstNewestGoodBackupAgeHours"
    assert rds["Dimensions"] == [
        {"Name": "Kind", "Value": "rds"},
        {"Name": "Region", "Value": "eu-central-1"},
    ]
    assert rds["TreatMissingData"] == "breaching"
    assert rds["Threshold"] == 50  # the offsite target, not the home one
    assert "eu-central-1" in rds["AlarmDescription"]
    assert not [
        a
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith("-backup-age-offsite")
    ]
