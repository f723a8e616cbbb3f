"""The IAM review against moto: an account with users, groups, roles and this stack (a small CloudFormation
stack named like the real one, with a prune role and a report role), and AWS's policy simulator.

moto does not implement iam:SimulatePrincipalPolicy. ``simulator`` answers it (botocore's
``before-call`` event: a handler that returns a response short-circuits the call) with the repository's
independent IAM evaluator (tests/iam/simulator.py) fed with the policies the test put into moto: the
principal's inline and managed policies, its groups', and the resource policy of the request. A real
evaluation of real documents, not an answer written into the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws

from lambdas.common.aws import iam_account
from tests.iam.recorder import _looking_up
from tests.iam.simulator import simulate

ACCOUNT = "123456789012"  # moto's
REGION = "eu-central-2"
BUCKET = f"schoolbackup-{ACCOUNT}-{REGION}"
STACK = "SchoolBackup"
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Zurich on the 1st: the review's default time
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# The stack as CloudFormation holds it: the prune role (deletes tagged AMIs, snapshots and sb-* RDS
# snapshots, as infra/prune.py grants) and the report role (reads).
_MANAGED = {"StringEquals": {"aws:ResourceTag/ManagedBy": "schoolbackup"}}
STACK_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "PruneRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": json.loads(TRUST)},
        },
        "PruneRoleDefaultPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "PruneRoleDefaultPolicy",
                "Roles": [{"Ref": "PruneRole"}],
                "PolicyDocument": _doc(
                    {
                        "Effect": "Allow",
                        "Action": ["ec2:DescribeImages", "ec2:DescribeSnapshots"],
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": "ec2:DeregisterImage",
                        "Resource": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":ec2:",
                                    {"Ref": "AWS::Region"},
                                    "::image/*",
                                ],
                            ]
                        },
                        "Condition": _MANAGED,
                    },
                    {
                        "Effect": "Allow",
                        "Action": "ec2:DeleteSnapshot",
                        "Resource": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":ec2:",
                                    {"Ref": "AWS::Region"},
                                    "::snapshot/*",
                                ],
                            ]
                        },
                        "Condition": _MANAGED,
                    },
                    {
                        "Effect": "Allow",
                        "Action": "rds:DeleteDBSnapshot",
                        "Resource": {
                            "Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:snapshot:sb-*"
                        },
                        "Condition": {"StringEquals": {"rds:snapshot-tag/ManagedBy": "schoolbackup"}},
                    },
                ),
            },
        },
        "ReportRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": json.loads(TRUST)},
        },
        "ReportRoleDefaultPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "ReportRoleDefaultPolicy",
                "Roles": [{"Ref": "ReportRole"}],
                "PolicyDocument": _doc(
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": f"arn:aws:s3:::{BUCKET}/dumps/*",
                    }
                ),
            },
        },
    }
}


@dataclass(frozen=True)
class Stack:
    prune_role: str
    report_role: str


def _response(body: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://iam.amazonaws.com", 200, HTTPHeaders(), None), body


def principal_policies(arn: str) -> list[dict[str, Any]]:
    """The identity policies of a user (its own and its groups') or role, as moto holds them."""
    iam = boto3.client("iam")
    kind, name = arn.split(":", 5)[5].split("/", maxsplit=1)[0], arn.rsplit("/", 1)[1]
    docs: list[dict[str, Any]] = []

    def managed(attached: list[Any]) -> None:
        for a in attached:
            policy = iam.get_policy(PolicyArn=a["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=a["PolicyArn"], VersionId=policy["DefaultVersionId"])
            docs.append(
                {
                    "name": a["PolicyName"],
                    "policy": iam_account.policy_document(version["PolicyVersion"]["Document"]),
                }
            )

    if kind == "user":
        for pname in iam.list_user_policies(UserName=name)["PolicyNames"]:
            doc = iam.get_user_policy(UserName=name, PolicyName=pname)["PolicyDocument"]
            docs.append({"name": pname, "policy": iam_account.policy_document(doc)})
        managed(iam.list_attached_user_policies(UserName=name)["AttachedPolicies"])
        for group in iam.list_groups_for_user(UserName=name)["Groups"]:
            g = group["GroupName"]
            for pname in iam.list_group_policies(GroupName=g)["PolicyNames"]:
                doc = iam.get_group_policy(GroupName=g, PolicyName=pname)["PolicyDocument"]
                docs.append({"name": f"{g}/{pname}", "policy": iam_account.policy_document(doc)})
            managed(iam.list_attached_group_policies(GroupName=g)["AttachedPolicies"])
    else:
        for pname in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            doc = iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"]
            docs.append({"name": pname, "policy": iam_account.policy_document(doc)})
        managed(iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
    return docs


def _value(entry: dict[str, Any]) -> Any:
    values = list(entry["ContextKeyValues"])
    return values[0] if len(values) == 1 and not entry.get("ContextKeyType", "").endswith("List") else values


def answer_simulation(params: dict[str, Any]) -> dict[str, Any]:
    """SimulatePrincipalPolicy as AWS answers it, decided by the independent evaluator."""
    arn = params["PolicySourceArn"]
    with _looking_up():  # the evaluator's own reads of moto are not the Lambda's requests
        identity = principal_policies(arn)
    context = {e["ContextKeyName"]: _value(e) for e in params.get("ContextEntries", [])}
    resource_policy = json.loads(params["ResourcePolicy"]) if params.get("ResourcePolicy") else None
    if resource_policy is None and any(a.startswith("kms:") for a in params["ActionNames"]):
        # AWS's simulator decides on the identity policies alone when it is given no ResourcePolicy; the
        # evaluator (like KMS itself) allows nothing on a key without a key policy, so it gets the one key
        # policy that leaves the decision to IAM: the account's root may do kms:* (what CDK's keys have).
        resource_policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    results = []
    for action in params["ActionNames"]:
        for resource in params.get("ResourceArns", ["*"]):
            simulation: dict[str, Any] = {
                "request": {
                    "principal": arn,
                    "action": action,
                    "resource": {"resource": resource, "accountId": ACCOUNT},
                    "contextVariables": context,
                },
                "identityPolicies": identity,
            }
            if resource_policy is not None:
                simulation["resourcePolicy"] = resource_policy
            decision = simulate(simulation)
            assert decision.result != "Error", (simulation, decision.errors)
            verdict = {"Allowed": "allowed", "ExplicitlyDenied": "explicitDeny"}.get(
                decision.result, "implicitDeny"
            )
            results.append({"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": verdict})
    return {"EvaluationResults": results, "IsTruncated": False}


@pytest.fixture
def simulated() -> list[dict[str, Any]]:
    """Every SimulatePrincipalPolicy request the code made (filled by ``aws``)."""
    return []


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, simulated: list[dict[str, Any]]) -> Iterator[None]:
    for name, value in {"BACKUP_BUCKET": BUCKET, "STACK_NAME": STACK}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(iam_account, "REPORT_WAIT_SECONDS", 0.0)
    with time_machine.travel(NOW, tick=False), mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        session = boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None

        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["simulation_params"] = dict(params)  # before-call sees only the serialized request

        def simulation(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            params = context["simulation_params"]
            simulated.append(params)
            return _response(answer_simulation(params))

        session.events.register("before-parameter-build.iam.SimulatePrincipalPolicy", keep_params)
        session.events.register("before-call.iam.SimulatePrincipalPolicy", simulation)
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        key = boto3.client("kms").create_key(Description="the backup key")["KeyMetadata"]["Arn"]
        monkeypatch.setenv("BACKUP_KEY_ARN", key)  # moto's default key policy: the account's root may kms:*
        yield
        boto3.DEFAULT_SESSION = None


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """This stack in CloudFormation (moto creates its roles and policies)."""
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK, TemplateBody=json.dumps(STACK_TEMPLATE), Capabilities=["CAPABILITY_IAM"]
    )
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    monkeypatch.setenv("PRUNE_ROLE_NAME", physical["PruneRole"])
    return Stack(physical["PruneRole"], physical["ReportRole"])


def root_mfa(on: bool) -> None:
    """Whether the root user has MFA: the account summary's AccountMFAEnabled. moto has no API to give the
    root user an MFA device, so the test sets what moto answers (its default: no MFA)."""
    from moto.iam.models import iam_backends

    iam_backends[ACCOUNT]["global"].account_summary._account_mfa_enabled = 1 if on else 0


@pytest.fixture
def clean(stack: Stack) -> Stack:
    """Nothing to find: the root user has MFA, no user, only the stack's roles as it defines them."""
    root_mfa(True)
    return stack


Seed = Callable[..., Any]
