"""The IAM review: function settings, monthly schedule, a role that only reads (and writes its own record
once), the alarm on new high findings that stays quiet between the monthly runs, cdk-nag clean."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import (
    assert_has_resource,
    function_logical_id,
    resources_of,
    role_statements,
    synth,
)

HANDLER = "lambdas.iam_review.handler.handler"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_function_knows_the_bucket_key_stack_and_prune_role(template: Template) -> None:
    fn = resources_of(template, "AWS::Lambda::Function")[function_logical_id(template, HANDLER)]
    variables = fn["Properties"]["Environment"]["Variables"]
    assert variables["STACK_NAME"] == "SchoolBackup"
    assert variables["BACKUP_KEY_ARN"]["Fn::GetAtt"][1] == "Arn"
    assert "Key" in variables["BACKUP_KEY_ARN"]["Fn::GetAtt"][0]
    prune = resources_of(template, "AWS::Lambda::Function")[
        function_logical_id(template, "lambdas.prune.handler.handler")
    ]
    assert variables["PRUNE_ROLE_NAME"] == {"Ref": prune["Properties"]["Role"]["Fn::GetAtt"][0]}
    assert fn["Properties"]["FunctionName"] == "SchoolBackup-iam-review"


def test_it_runs_on_the_configured_monthly_schedule_with_its_scheduled_time(template: Template) -> None:
    assert_has_resource(
        template,
        "AWS::Scheduler::Schedule",
        {
            "Name": "SchoolBackup-iam-review",
            "ScheduleExpression": "cron(0 8 1 * ? *)",
            "ScheduleExpressionTimezone": "Europe/Zurich",
            "Target": {
                "Arn": {"Fn::GetAtt": [function_logical_id(template, HANDLER), "Arn"]},
                "Input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"}),
                "RetryPolicy": Match.any_value(),
                "DeadLetterConfig": {"Arn": Match.any_value()},
            },
        },
    )


def test_the_role_reads_iam_and_its_stack_and_writes_only_its_own_record_once(template: Template) -> None:
    by_sid = role_statements(template, HANDLER)
    actions = {a for s in by_sid.values() for a in _as_list(s["Action"])}
    assert actions == {
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:GetAccountSummary",
        "iam:GetAccountAuthorizationDetails",
        "iam:SimulatePrincipalPolicy",
        "s3:GetBucketPolicy",
        "kms:GetKeyPolicy",
        "cloudformation:GetTemplate",
        "cloudformation:ListStackResources",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    simulate = json.dumps(by_sid["SimulatePrincipals"]["Resource"])
    assert ":user/*" in simulate and ":role/*" in simulate and '"*"' not in simulate
    assert json.dumps(by_sid["ReadOwnStack"]["Resource"]).endswith(':stack/SchoolBackup/*"]]}')
    put = by_sid["CreateOwnRecordOnce"]
    assert put["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    assert json.dumps(put["Resource"]).endswith('/reports/iam/*"]]}')
    assert by_sid["ListOwnRecords"]["Condition"] == {"StringLike": {"s3:prefix": ["reports/iam/*"]}}


def test_a_new_high_finding_alarms_and_a_month_without_data_does_not(template: Template) -> None:
    alarms = [
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "SchoolBackup-IamNewHighFindings"
    ]
    assert len(alarms) == 1
    [alarm] = alarms
    assert (alarm["MetricName"], alarm["Namespace"], alarm["Threshold"]) == (
        "IamNewHighFindings",
        "schoolbackup",
        0,
    )
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert "backupctl iam-review --last" in alarm["AlarmDescription"]
    assert any("AlarmsTopic" in json.dumps(action) for action in alarm["AlarmActions"])
    errors = [
        a
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "SchoolBackup-iam_review-errors"
    ]
    assert len(errors) == 1


def test_the_alarm_speaks_german_when_configured() -> None:
    german = synth(language="de")
    [alarm] = [
        a["Properties"]
        for a in resources_of(german, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == "SchoolBackup-IamNewHighFindings"
    ]
    assert alarm["AlarmDescription"].startswith("Die monatliche IAM-Überprüfung hat einen Befund")
