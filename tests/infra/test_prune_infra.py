"""Prune: function settings from config.retention, daily schedule, least-privilege role, cdk-nag clean."""

from __future__ import annotations

import copy
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from infra.config import CONTEXT_KEY, load_config
from infra.nag import enable_nag
from infra.prune import Prune
from infra.stack import BackupStack
from tests.infra.conftest import assert_has_resource, cdk_context

HANDLER = "lambdas.prune.handler.handler"


def build(nag: bool = False, **overrides: Any) -> Template:
    context = cdk_context()
    settings = copy.deepcopy(context[CONTEXT_KEY])
    settings.update(overrides)
    context[CONTEXT_KEY] = settings
    app = cdk.App(context=context)
    stack = BackupStack(app, "SchoolBackup", config=load_config(settings))
    if not hasattr(stack, "prune"):  # until infra/stack.py wires it in
        Prune(stack, "Prune", config=stack.config, factory=stack.factory, schedules=stack.schedules)
    if nag:
        enable_nag(app)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def template() -> Template:
    return build(
        schedules={"prune": "cron(45 4 * * ? *)"},
        retention={"keep_daily": 10, "keep_weekly": 5, "keep_monthly": 6, "max_age_days": 200, "min_keep": 4},
    )


def function_id(template: Template) -> str:
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}})
    assert len(found) == 1, found
    return next(iter(found))


def statements(template: Template) -> dict[str, dict[str, Any]]:
    function = template.find_resources("AWS::Lambda::Function")[function_id(template)]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    by_sid: dict[str, dict[str, Any]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                by_sid[statement.get("Sid", json.dumps(statement["Action"]))] = statement
    return by_sid


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
                "Arn": {"Fn::GetAtt": [function_id(template), "Arn"]},
                "Input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"}),
                "RetryPolicy": Match.any_value(),
                "DeadLetterConfig": {"Arn": Match.any_value()},
            },
        },
    )


def test_default_schedule_is_daily_at_five() -> None:
    schedules = build().find_resources(
        "AWS::Scheduler::Schedule", {"Properties": {"Description": "schoolbackup prune"}}
    )
    assert [s["Properties"]["ScheduleExpression"] for s in schedules.values()] == ["cron(0 5 * * ? *)"]


def test_role_deletes_only_what_is_tagged_managed_by_schoolbackup(template: Template) -> None:
    by_sid = statements(template)
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
    by_sid = statements(template)
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
    template = build(nag=True)  # raises on any unacknowledged AwsSolutions finding
    assert function_id(template)
