"""Prune: function settings from config.retention, daily schedule, least-privilege role, cdk-nag clean."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import assert_has_resource, function_logical_id, role_statements, synth

HANDLER = "lambdas.prune.handler.handler"


@pytest.fixture(scope="module")
def template() -> Template:
    return synth(
        schedules={"prune": "cron(45 4 * * ? *)"},
        retention={"keep_daily": 10, "keep_weekly": 5, "keep_monthly": 6, "max_age_days": 200, "min_keep": 4},
    )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources(statement: dict[str, Any]) -> list[str]:
    return [json.dumps(r) for r in as_list(statement["Resource"])]


def test_function_gets_the_retention_policy_from_config(template: Template) -> None:
    assert_has_resource(
        template,
        "AWS::Lambda::Function",
        {
            "Handler": HANDLER,
            "Timeout": 600,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "KEEP_DAILY": "10",
                        "KEEP_WEEKLY": "5",
                        "KEEP_MONTHLY": "6",
                        "MAX_AGE_DAYS": "200",
                        "MIN_KEEP": "4",
                        "DRY_RUN": "false",
                    }
                )
            },
        },
    )


def test_prune_is_scheduled_daily_in_the_configured_timezone_with_scheduled_time(template: Template) -> None:
    assert_has_resource(
        template,
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": "cron(45 4 * * ? *)",
            "ScheduleExpressionTimezone": "Europe/Zurich",
            "Target": {
                "Arn": {"Fn::GetAtt": [function_logical_id(template, HANDLER), "Arn"]},
                "Input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"}),
                "RetryPolicy": Match.any_value(),
                "DeadLetterConfig": {"Arn": Match.any_value()},
            },
        },
    )


def test_default_schedule_is_daily_at_five() -> None:
    schedules = synth().find_resources(
        "AWS::Scheduler::Schedule", {"Properties": {"Description": "schoolbackup prune"}}
    )
    assert [s["Properties"]["ScheduleExpression"] for s in schedules.values()] == ["cron(0 5 * * ? *)"]


def test_role_deletes_only_what_is_tagged_managed_by_schoolbackup(template: Template) -> None:
    by_sid = role_statements(template, HANDLER)
    managed = {"StringEquals": {"aws:ResourceTag/ManagedBy": "schoolbackup"}}

    deregister = by_sid["DeregisterOwnImages"]
    assert deregister["Action"] == "ec2:DeregisterImage"
    assert deregister["Condition"] == managed
    assert len(resources(deregister)) == 1
    assert resources(deregister)[0].endswith('::image/*"]]}')

    delete = by_sid["DeleteOwnEbsSnapshots"]
    assert delete["Action"] == "ec2:DeleteSnapshot"
    assert delete["Condition"] == managed
    assert len(resources(delete)) == 1
    assert resources(delete)[0].endswith('::snapshot/*"]]}')

    rds = by_sid["DeleteOwnDbSnapshots"]
    assert rds["Action"] == "rds:DeleteDBSnapshot"
    assert rds["Condition"] == {"StringEquals": {"rds:snapshot-tag/ManagedBy": "schoolbackup"}}
    assert len(resources(rds)) == 1
    assert resources(rds)[0].endswith(':snapshot:sb-*"]]}')


def test_role_lists_and_reads_the_quota_but_nothing_else(template: Template) -> None:
    by_sid = role_statements(template, HANDLER)
    assert by_sid["ListImagesAndSnapshots"]["Resource"] == "*"
    assert by_sid["ReadSnapshotQuota"]["Resource"] == "*"
    assert by_sid["ReadSnapshotQuota"]["Action"] == "rds:DescribeAccountAttributes"
    listing = by_sid["ListDbSnapshots"]
    assert listing["Action"] == "rds:DescribeDBSnapshots"
    listed = resources(listing)
    assert len(listed) == 2
    assert listed[0].endswith(':db:*"]]}')
    assert listed[1].endswith(':snapshot:*"]]}')

    actions = {a for s in by_sid.values() for a in as_list(s["Action"])}
    assert actions == {
        "ec2:DescribeImages",
        "ec2:DescribeSnapshots",
        "ec2:DeregisterImage",
        "ec2:DeleteSnapshot",
        "rds:DescribeDBSnapshots",
        "rds:DescribeAccountAttributes",
        "rds:DeleteDBSnapshot",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    # No delete action without a condition.
    for statement in by_sid.values():
        for action in as_list(statement["Action"]):
            if "Delete" in action or "Deregister" in action:
                assert "Condition" in statement, statement


def test_prune_passes_cdk_nag_with_written_reasons() -> None:
    template = synth()  # raises on any unacknowledged AwsSolutions finding
    assert function_logical_id(template, HANDLER)


OFFSITE = {"enabled": True, "region": "eu-central-1", "kinds": ["dump", "rds", "ami"]}


def _joined(value: Any) -> str:
    """A resource as one string, with the pseudo parameters named (``Fn::Join`` of strings and Refs)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in value["Fn::Join"][1])
    return str(value)


def test_with_offsite_copies_prune_may_delete_only_its_own_copies_in_the_offsite_region() -> None:
    statements = role_statements(synth(offsite=OFFSITE), HANDLER)  # synth with cdk-nag: no open finding
    managed = {"StringEquals": {"aws:ResourceTag/ManagedBy": "schoolbackup"}}
    images, snaps = statements["DeregisterOwnOffsiteImages"], statements["DeleteOwnOffsiteEbsSnapshots"]
    assert (images["Action"], images["Condition"]) == ("ec2:DeregisterImage", managed)
    assert _joined(images["Resource"]) == "arn:<AWS::Partition>:ec2:eu-central-1::image/*"
    assert (snaps["Action"], snaps["Condition"]) == ("ec2:DeleteSnapshot", managed)
    assert _joined(snaps["Resource"]) == "arn:<AWS::Partition>:ec2:eu-central-1::snapshot/*"
    rds = statements["DeleteOwnOffsiteDbSnapshots"]
    assert rds["Condition"] == {"StringEquals": {"rds:snapshot-tag/ManagedBy": "schoolbackup"}}
    assert _joined(rds["Resource"]) == "arn:<AWS::Partition>:rds:eu-central-1:<AWS::AccountId>:snapshot:sb-*"


def test_offsite_permissions_follow_the_copied_kinds_and_are_absent_when_offsite_is_off(
    template: Template,
) -> None:
    assert not [sid for sid in role_statements(template, HANDLER) if "Offsite" in sid]
    only_rds = role_statements(synth(offsite={**OFFSITE, "kinds": ["rds"]}), HANDLER)
    assert {sid for sid in only_rds if "Offsite" in sid} == {
        "ListOffsiteDbSnapshots",
        "DeleteOwnOffsiteDbSnapshots",
    }
