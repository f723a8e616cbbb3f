"""The offsite_copy function: built only with offsite copies of rds or ami on, scheduled, and a role that may
copy only schoolbackup's originals into sb-* copies, tag them only with the copy tags, and use keys only
through RDS and EC2 (the offsite key by its alias). The key statements are judged by the IAM evaluator too:
the unit tests' recorded calls cannot show which key an encrypted original at home uses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from lambdas.common.contracts import COPY_TAG_KEYS, OFFSITE_KEY_ALIAS, job_resource_name
from tests.iam.check import Principal, simulation_for
from tests.iam.requests import IamRequest
from tests.iam.simulator import Decision, simulate
from tests.iam.stack import ACCOUNT, PARTITION, REGION, stack_for
from tests.infra.conftest import function_logical_id, role_statements, synth

OFFSITE = "eu-central-1"
ON = {"enabled": True, "region": OFFSITE, "kinds": ["dump", "rds", "ami"]}
HANDLER = "lambdas.offsite_copy.handler.handler"


@pytest.fixture(scope="module")
def with_offsite() -> Template:
    return synth(offsite=ON)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_no_copy_function_without_offsite_copies_of_rds_or_ami(template: Template) -> None:
    only_dumps = synth(offsite={**ON, "kinds": ["dump"]})
    for t in (template, only_dumps):
        assert not t.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": HANDLER}})
        assert "offsite_copy" not in _text(t.find_resources("AWS::Scheduler::Schedule"))


def test_copy_function_is_scheduled_daily_with_the_offsite_settings(with_offsite: Template) -> None:
    function = with_offsite.find_resources("AWS::Lambda::Function")[
        function_logical_id(with_offsite, HANDLER)
    ]
    props = function["Properties"]
    env = props["Environment"]["Variables"]
    assert env["OFFSITE_REGION"] == OFFSITE
    assert env["OFFSITE_KINDS"] == "dump,rds,ami"
    assert env["OFFSITE_KEY_ALIAS"] == OFFSITE_KEY_ALIAS
    assert (env["OFFSITE_RDS_FREQUENCY"], env["OFFSITE_AMI_FREQUENCY"]) == ("daily", "weekly")
    assert props["Timeout"] == 300
    schedules = [
        s["Properties"]
        for s in with_offsite.find_resources("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Name"] == job_resource_name("SchoolBackup", "offsite_copy")
    ]
    assert len(schedules) == 1
    assert schedules[0]["ScheduleExpression"] == "cron(15 4 * * ? *)"
    assert schedules[0]["ScheduleExpressionTimezone"] == "Europe/Zurich"
    assert "<aws.scheduler.scheduled-time>" in schedules[0]["Target"]["Input"]


def test_role_copies_only_sb_names_tags_only_copy_tags_and_deletes_nothing(with_offsite: Template) -> None:
    statements = role_statements(with_offsite, HANDLER)
    copy = statements["CopyOwnSnapshotsOffsite"]
    assert copy["Action"] == "rds:CopyDBSnapshot"
    assert all(_text(r).endswith(':snapshot:sb-*"]]}') for r in copy["Resource"])
    assert f":rds:{OFFSITE}:" in _text(copy["Resource"][1])
    for sid, job in (("TagSnapshotCopiesOnCopy", "rds-daily"), ("TagImageCopies", "ami-weekly")):
        conditions = statements[sid]["Condition"]
        assert conditions["StringEquals"]["aws:RequestTag/ManagedBy"] == "schoolbackup"
        assert conditions["StringEquals"]["aws:RequestTag/BackupJob"] == job
        assert conditions["ForAllValues:StringEquals"]["aws:TagKeys"] == list(COPY_TAG_KEYS)
    actions = {
        a
        for s in statements.values()
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not [a for a in actions if "Delete" in a or "Deregister" in a or a.endswith("*")]
    assert "kms:ReEncrypt*" not in actions


# --- the keys, judged by the IAM evaluator -----------------------------------------------------------------
def _stack() -> Any:
    return stack_for({"offsite": ON})


def _copier() -> Principal:
    return Principal.function(_stack(), "lambdas.offsite_copy.handler")


def _kms(action: str, key: str, service: str | None, region: str, **extra: str) -> IamRequest:
    context: dict[str, Any] = {"kms:CallerAccount": ACCOUNT, **extra}
    if service:
        context["kms:ViaService"] = f"{service}.{region}.amazonaws.com"
    if action == "kms:CreateGrant":
        context.setdefault("kms:GrantIsForAWSResource", "true")
    return IamRequest(action, key, context, "test")


def _home_key() -> str:  # a key of the school's own in the home region (its id is unknown at synth)
    return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# A customer managed key's default policy: the account's IAM policies decide (the role's statements).
# (The AWS managed keys aws/rds and aws/ebs allow every principal of the account through their service by
# their own key policy, so for them the role's statements are not what decides.)
ACCOUNT_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}


def _decide(request: IamRequest) -> Decision:
    """The evaluator's decision; a key that is not the offsite key gets the default key policy."""
    stack = _stack()
    simulation = simulation_for(stack, _copier(), request)
    if request.action.startswith("kms:") and request.resource != stack.offsite_key_arn:
        simulation["resourcePolicy"] = ACCOUNT_KEY_POLICY
    return simulate(simulation)


def _other_offsite_key() -> str:  # another key of the account in the offsite region, not the offsite key
    return f"arn:{PARTITION}:kms:{OFFSITE}:{ACCOUNT}:key/99999999-12ab-34cd-56ef-1234567890ab"


ALLOWED = [
    ("rds", "kms:DescribeKey", "offsite"),
    ("rds", "kms:CreateGrant", "offsite"),
    ("ec2", "kms:DescribeKey", "offsite"),
    ("ec2", "kms:CreateGrant", "offsite"),
    ("ec2", "kms:GenerateDataKeyWithoutPlaintext", "offsite"),
    ("ec2", "kms:ReEncryptTo", "offsite"),
    ("ec2", "kms:ReEncryptFrom", "offsite"),
    ("ec2", "kms:Decrypt", "offsite"),
    ("rds", "kms:DescribeKey", "home"),
    ("rds", "kms:Decrypt", "home"),
    ("rds", "kms:CreateGrant", "home"),
    ("ec2", "kms:DescribeKey", "home"),
    ("ec2", "kms:Decrypt", "home"),
    ("ec2", "kms:ReEncryptFrom", "home"),
    ("ec2", "kms:CreateGrant", "home"),
]


@pytest.mark.parametrize(("service", "action", "which"), ALLOWED)
def test_keys_are_usable_through_rds_and_ec2_while_copying(service: str, action: str, which: str) -> None:
    key, region = (_stack().offsite_key_arn, OFFSITE) if which == "offsite" else (_home_key(), REGION)
    request = _kms(action, key, service, region)
    decision = _decide(request)
    assert decision.allowed, (request.describe(), decision)


def _denied_cases() -> dict[str, IamRequest]:
    """Built on use (the synth is cached per process), named for the test ids."""
    key = _stack().offsite_key_arn
    return {
        "offsite key directly, not through a service": _kms("kms:Decrypt", key, None, OFFSITE),
        "offsite key through S3": _kms("kms:Decrypt", key, "s3", OFFSITE),
        "another key in the offsite region": _kms("kms:DescribeKey", _other_offsite_key(), "ec2", OFFSITE),
        "a grant not for an AWS resource": _kms(
            "kms:CreateGrant", key, "ec2", OFFSITE, **{"kms:GrantIsForAWSResource": "false"}
        ),
        "a home key directly": _kms("kms:Decrypt", _home_key(), None, REGION),
        "a home key through S3": _kms("kms:Decrypt", _home_key(), "s3", REGION),
        "encrypting with a home key": _kms("kms:GenerateDataKeyWithoutPlaintext", _home_key(), "ec2", REGION),
        "a home grant not for an AWS resource": _kms(
            "kms:CreateGrant", _home_key(), "rds", REGION, **{"kms:GrantIsForAWSResource": "false"}
        ),
        "deleting an original": IamRequest(
            "rds:DeleteDBSnapshot",
            f"arn:{PARTITION}:rds:{REGION}:{ACCOUNT}:snapshot:sb-db-20261127-0330",
            {},
            "test",
        ),
        "copying into a foreign name": IamRequest(
            "rds:CopyDBSnapshot",
            f"arn:{PARTITION}:rds:{OFFSITE}:{ACCOUNT}:snapshot:school-own",
            {},
            "test",
        ),
        "tagging an offsite image as anything else": IamRequest(
            "ec2:CreateTags",
            f"arn:{PARTITION}:ec2:{OFFSITE}::image/ami-0123456789abcdef0",
            {
                "aws:RequestTag/ManagedBy": "schoolbackup",
                "aws:RequestTag/BackupJob": "ami-weekly",
                "aws:RequestTag/Owner": "x",
                "aws:TagKeys": ("ManagedBy", "BackupJob", "Owner"),
            },
            "test",
        ),
    }


DENIED = (
    "offsite key directly, not through a service",
    "offsite key through S3",
    "another key in the offsite region",
    "a grant not for an AWS resource",
    "a home key directly",
    "a home key through S3",
    "encrypting with a home key",
    "a home grant not for an AWS resource",
    "deleting an original",
    "copying into a foreign name",
    "tagging an offsite image as anything else",
)


def test_every_refusal_case_is_named() -> None:
    assert set(_denied_cases()) == set(DENIED)


@pytest.mark.parametrize("what", DENIED)
def test_keys_and_backups_are_refused_otherwise(what: str) -> None:
    decision = _decide(_denied_cases()[what])
    assert not decision.allowed, (what, decision)
