"""The monthly IAM review against moto: an account seeded with each kind of finding (and things that look
like one but are not), an account with none, the record written once, and the new high findings against
the previous month."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
import time_machine
from botocore.awsrequest import AWSResponse, HTTPHeaders

from lambdas.common.aws.clients import cloudformation_client, iam_client, kms_client, s3_client
from lambdas.common.aws.iam_account import IamReadError, parse_credential_report
from lambdas.common.jobs.iam_review import Clients, credential_findings, run_iam_review
from lambdas.common.settings import IamReviewSettings
from lambdas.iam_review.handler import handler
from tests.emf import emf_metrics
from tests.unit.iam_review.conftest import ACCOUNT, BUCKET, NOW, Stack, root_mfa

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
DEC = {"scheduled_time": "2026-12-01T07:00:00Z"}
RECORD = "reports/iam/2026-12.json"


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _user(name: str, *, password: bool = False, inline: str | None = None) -> str:
    iam = boto3.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if password:
        iam.create_login_profile(UserName=name, Password="Correct-Horse-Battery-9")
    if inline:
        iam.put_user_policy(UserName=name, PolicyName="own", PolicyDocument=inline)
    return str(arn)


def _key(user: str, *, created_days_ago: int, used_days_ago: int | None = None) -> None:
    """An access key created (and used) that many days before NOW; the use is a real signed request."""
    with time_machine.travel(NOW - timedelta(days=created_days_ago), tick=False):
        key = boto3.client("iam").create_access_key(UserName=user)["AccessKey"]
    if used_days_ago is not None:
        with time_machine.travel(NOW - timedelta(days=used_days_ago), tick=False):
            boto3.client(
                "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
            ).get_caller_identity()


def _seed_everything(stack: Stack) -> None:
    iam, s3 = boto3.client("iam"), boto3.client("s3")
    # console users: one without MFA (a finding), one with a virtual MFA device (none)
    _user("alice", password=True)
    _user("bob", password=True)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="bob", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    # access keys: old but used yesterday; old and never used; used last 100 days ago; new and unused
    _user("carol")
    _key("carol", created_days_ago=200, used_days_ago=1)
    _user("dave")
    _key("dave", created_days_ago=120)
    _user("erin")
    _key("erin", created_days_ago=60, used_days_ago=59)
    _key("erin", created_days_ago=30)
    # admin: AdministratorAccess on a user, "*" on "*" inline on a role, AdministratorAccess via a group
    _user("frank")
    iam.attach_user_policy(UserName="frank", PolicyArn=ADMIN)
    iam.create_role(RoleName="ops-admin", AssumeRolePolicyDocument=_doc())
    iam.put_role_policy(RoleName="ops-admin", PolicyName="everything", PolicyDocument=_doc(_allow("*")))
    iam.create_group(GroupName="admins")
    iam.attach_group_policy(GroupName="admins", PolicyArn=ADMIN)
    _user("gina")
    iam.add_user_to_group(GroupName="admins", UserName="gina")
    # can delete backups: inline allows; one denied by its own explicit Deny, one by the bucket policy
    _user(
        "henry",
        inline=_doc(
            _allow("s3:DeleteObjectVersion", f"arn:aws:s3:::{BUCKET}/*"),
            _allow("kms:ScheduleKeyDeletion"),
        ),
    )
    _user(
        "ivan",
        inline=_doc(
            _allow("ec2:DeregisterImage"),
            {"Effect": "Deny", "Action": "ec2:DeregisterImage", "Resource": "*"},
        ),
    )
    judy = _user("judy", inline=_doc(_allow("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/*")))
    s3.put_bucket_policy(
        Bucket=BUCKET,
        Policy=_doc(
            {
                "Sid": "NoDeletesByJudy",
                "Effect": "Deny",
                "Principal": {"AWS": judy},
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
            }
        ),
    )
    # a service-linked role belongs to AWS: never a finding, whatever it may do
    iam.create_role(
        RoleName="AWSServiceRoleForX",
        Path="/aws-service-role/x.amazonaws.com/",
        AssumeRolePolicyDocument=_doc(),
    )
    iam.attach_role_policy(RoleName="AWSServiceRoleForX", PolicyArn=ADMIN)
    # drift: the report role of the stack gets an extra inline policy and an action in its own policy
    iam.put_role_policy(
        RoleName=stack.report_role,
        PolicyName="added-by-hand",
        PolicyDocument=_doc(_allow("s3:ListAllMyBuckets")),
    )
    iam.put_role_policy(
        RoleName=stack.report_role,
        PolicyName="ReportRoleDefaultPolicy",
        PolicyDocument=_doc(_allow(["s3:GetObject", "s3:PutObject"], f"arn:aws:s3:::{BUCKET}/dumps/*")),
    )


def _found(record: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["kind"], f["principal"].rsplit(":", 1)[1], f["severity"]) for f in record["findings"]}


def _record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key=RECORD)["Body"].read()
    )
    return record


def test_an_account_with_every_kind_of_finding_is_reported_exactly(
    stack: Stack, lambda_context: Any, capsys: Any
) -> None:
    _seed_everything(stack)
    result = handler(DEC, lambda_context)

    record = _record()
    assert {k: result[k] for k in ("month", "findings", "counts")} == {
        k: record[k] for k in ("month", "findings", "counts")
    }
    assert set(record) >= {"generated_at", "findings"}
    assert all(set(f) >= {"kind", "principal", "detail", "severity"} for f in record["findings"])
    assert _found(record) == {
        ("root-without-mfa", "root", "high"),
        ("console-user-without-mfa", "user/alice", "high"),
        ("access-key-old", "user/carol", "medium"),
        ("access-key-old", "user/dave", "medium"),
        ("access-key-unused", "user/dave", "medium"),
        ("admin-access", "user/frank", "high"),
        ("admin-access", "role/ops-admin", "high"),
        ("admin-access", "user/gina", "high"),
        ("can-delete-backups", "user/frank", "high"),
        ("can-delete-backups", "role/ops-admin", "high"),
        ("can-delete-backups", "user/gina", "high"),
        ("can-delete-backups", "user/henry", "high"),
        ("stack-role-drift", f"role/{stack.report_role}", "high"),
    }
    # not found: bob (MFA), erin (keys young or used), ivan (explicit Deny), judy (bucket policy Deny),
    # the service-linked role, and the prune role (it deletes by design)
    detail = {(f["kind"], f["principal"].rsplit("/", 1)[-1]): f["detail"] for f in record["findings"]}
    assert detail[("access-key-old", "carol")].startswith(
        "access key 1 was created or last rotated on 2026-05-15, 200 days ago"
    )
    assert detail[("access-key-unused", "dave")] == "access key 1 has never been used in its 120 days"
    assert (
        detail[("admin-access", "gina")]
        == "is a member of group admins, whose AdministratorAccess allows everything"
    )
    assert detail[("admin-access", "ops-admin")] == "inline policy everything allows everything (* on *)"
    assert detail[("can-delete-backups", "henry")] == (
        f"can s3:DeleteObjectVersion on objects in s3://{BUCKET}; kms:ScheduleKeyDeletion on the backup key"
    )
    drift = detail[("stack-role-drift", stack.report_role)]
    assert "inline policy added-by-hand is not defined by the stack (it allows s3:listallmybuckets)" in drift
    assert (
        "inline policy ReportRoleDefaultPolicy allows s3:putobject, which the stack does not grant" in drift
    )
    assert record["counts"] == {"high": 10, "medium": 3, "low": 0}
    metrics = emf_metrics(capsys.readouterr().out)
    assert {(m["name"], m["dimensions"].get("Severity")): m["value"] for m in metrics} == {
        ("IamFindings", "high"): 10.0,
        ("IamFindings", "medium"): 3.0,
        ("IamFindings", "low"): 0.0,
        ("IamNewHighFindings", None): 10.0,  # the first review: every high finding is new
    }


def test_an_account_with_nothing_to_find_has_no_finding(
    clean: Stack, lambda_context: Any, simulated: list[Any]
) -> None:
    result = handler(DEC, lambda_context)
    assert result["findings"] == [] and result["counts"] == {"high": 0, "medium": 0, "low": 0}
    assert result["checked"] == {"users": 0, "roles": 2, "stack_roles": 2}
    # both roles were really asked about every destroying action (six questions each)
    assert len(simulated) == 12


def test_prune_deletes_by_design_but_anything_more_is_a_finding(clean: Stack, lambda_context: Any) -> None:
    boto3.client("iam").put_role_policy(
        RoleName=clean.prune_role,
        PolicyName="more",
        PolicyDocument=_doc(_allow("s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/*")),
    )
    result = handler(DEC, lambda_context)
    by_kind = {f["kind"]: f for f in result["findings"]}
    assert set(by_kind) == {"can-delete-backups", "stack-role-drift"}
    assert by_kind["can-delete-backups"]["detail"] == f"can s3:DeleteObject on objects in s3://{BUCKET}"


def test_the_prune_role_is_only_exempt_by_its_name(
    clean: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under another name its (tag-conditioned) deletions show: the simulation really allows them."""
    monkeypatch.setenv("PRUNE_ROLE_NAME", "some-other-role")
    [finding] = handler(DEC, lambda_context)["findings"]
    assert finding["principal"].endswith(f"role/{clean.prune_role}")
    assert finding["detail"] == (
        "can ec2:DeregisterImage on schoolbackup's AMIs; ec2:DeleteSnapshot on their EBS snapshots; "
        "rds:DeleteDBSnapshot on schoolbackup's RDS snapshots (sb-*)"
    )


def test_attaching_administrator_access_to_a_stack_role_is_drift(stack: Stack, lambda_context: Any) -> None:
    root_mfa(True)
    boto3.client("iam").attach_role_policy(RoleName=stack.report_role, PolicyArn=ADMIN)
    found = {(f["kind"], f["detail"]) for f in handler(DEC, lambda_context)["findings"]}
    assert (
        "stack-role-drift",
        f"role ReportRole of the stack: managed policy AdministratorAccess ({ADMIN}) is attached but not defined by the stack",
    ) in found
    assert {k for k, _ in found} == {"stack-role-drift", "admin-access", "can-delete-backups"}


def test_the_record_is_written_once_and_a_repeated_run_returns_it(stack: Stack, lambda_context: Any) -> None:
    first = handler(DEC, lambda_context)
    etag = boto3.client("s3").head_object(Bucket=BUCKET, Key=RECORD)["ETag"]
    _user("late", password=True)  # after the month's review: not in this month's record
    again = handler({"scheduled_time": "2026-12-15T09:00:00Z"}, lambda_context)
    assert again["repeated"] is True and first["repeated"] is False
    assert again["findings"] == first["findings"] == _record()["findings"]
    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=RECORD)["ETag"] == etag
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="reports/iam/")["Contents"]
    assert [o["Key"] for o in listed] == [RECORD]


def test_new_high_findings_are_those_the_previous_month_did_not_have(
    stack: Stack, lambda_context: Any, capsys: Any
) -> None:
    _user("alice", password=True)
    with time_machine.travel(NOW - timedelta(days=30), tick=False):
        november = handler({"scheduled_time": "2026-11-01T07:00:00Z"}, lambda_context)
    assert november["month"] == "2026-11" and len(november["new_high"]) == 2  # root and alice: all new
    capsys.readouterr()
    _user("frank")
    boto3.client("iam").attach_user_policy(UserName="frank", PolicyArn=ADMIN)
    december = handler(DEC, lambda_context)
    assert december["previous"] == "reports/iam/2026-11.json"
    assert sorted((n["kind"], n["principal"].rsplit(":", 1)[1]) for n in december["new_high"]) == [
        ("admin-access", "user/frank"),
        ("can-delete-backups", "user/frank"),
    ]
    metrics = {m["name"]: m["value"] for m in emf_metrics(capsys.readouterr().out) if not m["dimensions"]}
    assert metrics == {"IamNewHighFindings": 2.0}


def test_a_credential_report_that_never_gets_ready_fails_after_a_few_short_waits(stack: Stack) -> None:
    events = boto3.DEFAULT_SESSION.events if boto3.DEFAULT_SESSION else None
    assert events is not None
    events.register(
        "before-call.iam.GenerateCredentialReport",
        lambda **_: (AWSResponse("https://iam", 200, HTTPHeaders(), None), {"State": "INPROGRESS"}),
    )
    waits: list[float] = []
    settings = IamReviewSettings.from_env()
    clients = Clients(iam_client(), cloudformation_client(), s3_client(), kms_client())
    with pytest.raises(
        IamReadError, match=r"still not ready after 5 attempts .* run the review again in a few minutes"
    ):
        run_iam_review(clients, settings, NOW, sleep=waits.append)
    assert len(waits) == 4
    assert (
        boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    )  # no record of a failed review


def test_the_root_users_keys_in_a_real_credential_report_are_checked() -> None:
    """AWS's report has a <root_account> row (moto's has none): an old root key is a finding."""
    report = (
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
        "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
        "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
        "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
        "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,"
        "cert_2_active,cert_2_last_rotated\n"
        f"<root_account>,arn:aws:iam::{ACCOUNT}:root,2020-01-01T00:00:00+00:00,not_supported,"
        "2026-11-30T10:00:00+00:00,not_supported,not_supported,true,true,2021-03-04T05:06:07+00:00,"
        "2026-11-29T00:00:00+00:00,eu-central-2,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    )
    [row] = parse_credential_report(report.encode())
    assert row.is_root and row.mfa_active
    [finding] = credential_findings([row], NOW)
    assert (finding.kind, finding.principal) == ("access-key-old", f"arn:aws:iam::{ACCOUNT}:root")
    assert "2021-03-04" in finding.detail
