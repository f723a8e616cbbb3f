"""BackupJobs: rds_snapshot and ami_backup functions, schedules and least-privilege roles.

The stack is synthesized with cdk-nag on (tests.infra.conftest.synth), as every synth is.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import assert_has_resource, function_logical_id, role_statements, synth


@pytest.fixture(scope="module")
def template() -> Template:
    return synth(
        schedules={"rds_snapshot": "cron(15 4 * * ? *)"},
        selection={
            "tag_key": "Sicherung",
            "tag_value": "ja",
            "ec2_instance_ids": [],
            "rds_instance_ids": ["old-db"],
        },
        ami={"no_reboot": False},
    )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_text(statement: dict[str, Any]) -> list[str]:
    return [json.dumps(r) for r in as_list(statement["Resource"])]


@pytest.mark.parametrize(
    ("job", "handler", "cron"),
    [
        ("rds_snapshot", "lambdas.rds_snapshot.handler.handler", "cron(15 4 * * ? *)"),
        ("ami_backup", "lambdas.ami_backup.handler.handler", "cron(0 3 ? * SUN *)"),
    ],
)
def test_each_job_is_scheduled_in_the_configured_timezone_with_scheduled_time_retries_and_dlq(
    template: Template, job: str, handler: str, cron: str
) -> None:
    function_id = function_logical_id(template, handler)
    assert_has_resource(
        template,
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": cron,
            "ScheduleExpressionTimezone": "Europe/Zurich",
            "Target": {
                "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                "Input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"}),
                "RetryPolicy": {
                    "MaximumRetryAttempts": Match.any_value(),
                    "MaximumEventAgeInSeconds": Match.any_value(),
                },
                "DeadLetterConfig": {"Arn": Match.any_value()},
            },
        },
    )


def test_functions_get_selection_and_ami_settings_from_config(template: Template) -> None:
    assert_has_resource(
        template,
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.rds_snapshot.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"SELECTION_TAG": "Sicherung=ja", "RDS_INSTANCE_IDS": "old-db"}
                )
            },
        },
    )
    assert_has_resource(
        template,
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.ami_backup.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {"SELECTION_TAG": "Sicherung=ja", "EC2_INSTANCE_IDS": "", "NO_REBOOT": "false"}
                )
            },
        },
    )


def test_rds_role_creates_snapshots_only_of_tagged_or_listed_instances_into_sb_names(
    template: Template,
) -> None:
    statements = role_statements(template, "lambdas.rds_snapshot.handler.handler")
    tagged = statements["SnapshotTaggedInstances"]
    assert tagged["Action"] == "rds:CreateDBSnapshot"
    assert tagged["Condition"] == {"StringEquals": {"rds:db-tag/Sicherung": "ja"}}
    assert resource_text(tagged)[0].endswith(':db:*"]]}')
    listed = statements["SnapshotListedInstances"]
    assert resource_text(listed)[0].endswith(':db:old-db"]]}')
    names = statements["CreateOwnSnapshotNames"]
    assert resource_text(names)[0].endswith(':snapshot:sb-*"]]}')
    tags = statements["TagOwnSnapshotsOnCreate"]
    assert tags["Action"] == "rds:AddTagsToResource"
    assert tags["Condition"]["StringEquals"] == {
        "aws:RequestTag/ManagedBy": "schoolbackup",
        "aws:RequestTag/BackupJob": "rds-daily",
    }
    assert tags["Condition"]["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["ManagedBy", "BackupJob", "BackupSource"]
    }
    assert statements["ReadSnapshotQuota"]["Resource"] == "*"


def test_rds_role_has_no_delete_or_ec2_actions(template: Template) -> None:
    actions = {
        a
        for s in role_statements(template, "lambdas.rds_snapshot.handler.handler").values()
        for a in as_list(s["Action"])
    }
    assert actions == {
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeDBSnapshots",
        "rds:DescribeAccountAttributes",
        "rds:CreateDBSnapshot",
        "rds:AddTagsToResource",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_ami_role_images_only_tagged_instances_and_writes_only_schoolbackup_tags(template: Template) -> None:
    statements = role_statements(template, "lambdas.ami_backup.handler.handler")
    image = statements["ImageTaggedInstances"]
    assert image["Action"] == "ec2:CreateImage"
    assert image["Condition"] == {"StringEquals": {"ec2:ResourceTag/Sicherung": "ja"}}
    on_create = statements["TagOnCreateImage"]
    assert on_create["Action"] == "ec2:CreateTags"
    assert on_create["Condition"]["StringEquals"] == {
        "aws:RequestTag/ManagedBy": "schoolbackup",
        "aws:RequestTag/BackupJob": "ami-weekly",
        "ec2:CreateAction": "CreateImage",
    }
    afterwards = statements["TagImageSnapshotsAfterwards"]
    assert len(as_list(afterwards["Resource"])) == 1
    assert resource_text(afterwards)[0].endswith('::snapshot/*"]]}')
    assert afterwards["Condition"]["StringEquals"]["aws:RequestTag/ManagedBy"] == "schoolbackup"
    assert afterwards["Condition"]["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["ManagedBy", "BackupJob", "BackupSource"]
    }
    assert "ImageListedInstances" not in statements  # no ids configured


def test_ami_role_has_no_delete_deregister_or_reboot_actions(template: Template) -> None:
    actions = {
        a
        for s in role_statements(template, "lambdas.ami_backup.handler.handler").values()
        for a in as_list(s["Action"])
    }
    assert actions == {
        "ec2:DescribeInstances",
        "ec2:DescribeImages",
        "ec2:DescribeSnapshots",
        "ec2:CreateImage",
        "ec2:CreateTags",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_listed_ec2_instances_get_their_own_create_image_statement() -> None:
    template = synth(
        selection={
            "tag_key": "Backup",
            "tag_value": "true",
            "ec2_instance_ids": ["i-0123456789abcdef0"],
            "rds_instance_ids": [],
        }
    )
    statements = role_statements(template, "lambdas.ami_backup.handler.handler")
    assert resource_text(statements["ImageListedInstances"])[0].endswith(':instance/i-0123456789abcdef0"]]}')
    assert "SnapshotListedInstances" not in role_statements(template, "lambdas.rds_snapshot.handler.handler")
