"""Offsite copies into another account: the three stacks (home pinned to the home account, the offsite
stack in the target account, the staging stack in the home account's offsite region), what the home
account may do in the target account (bucket and key policy, the three roles there), the staging key,
and the home roles that now only assume the target's roles. Read from the templates as app.py builds
them, with cdk-nag on."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from infra.nag import acknowledge, enable_nag
from lambdas.common.contracts import (
    COPY_TAG_KEYS,
    OFFSITE_KEY_ALIAS,
    OFFSITE_REPLICATION_RULE,
    STAGE_KEY,
    STAGING_KEY_ALIAS,
    offsite_role_arn,
    offsite_stack_name,
    staging_stack_name,
)
from tests.infra.conftest import (
    CROSS_ACCOUNT_OFFSITE,
    HOME_ACCOUNT,
    OFFSITE_REGION,
    TARGET_ACCOUNT,
    role_statements,
    synth_app,
)

HOME = "SchoolBackup"
OFFSITE = offsite_stack_name(HOME)
STAGING = staging_stack_name(HOME)
HANDLERS = {
    "copy": "lambdas.offsite_copy.handler.handler",
    "prune": "lambdas.prune.handler.handler",
    "verify": "lambdas.verify.handler.handler",
    "report": "lambdas.report.handler.handler",
}
ASSUMED = {"copy": "copy", "prune": "prune", "verify": "read", "report": "read"}

Stacks = tuple[cdk.App, dict[str, Template]]


def _join(value: Any) -> str:
    """A Fn::Join of literals and pseudo parameters as text (``${AWS::Partition}``)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    sep, parts = value["Fn::Join"]
    return str(sep).join(_join(p) for p in parts)


def _arn(text: str) -> str:
    return text.replace("arn:aws:", "arn:${AWS::Partition}:")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(statements: dict[str, dict[str, Any]]) -> set[str]:
    return {a for s in statements.values() for a in _list(s["Action"])}


def _resources(statement: dict[str, Any]) -> list[str]:
    return [_join(r) for r in _list(statement["Resource"])]


def _root(account: str) -> dict[str, Any]:
    return {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{account}:root"]]}}


def _policy_statements(template: Template, rtype: str, prop: str) -> dict[str, dict[str, Any]]:
    by_sid: dict[str, dict[str, Any]] = {}
    for res in template.find_resources(rtype).values():
        for s in res["Properties"][prop]["Statement"]:
            by_sid[s.get("Sid", json.dumps(s["Action"]))] = s
    return by_sid


def _role(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": name}})
    assert len(found) == 1, list(found)
    return next(iter(found.items()))


def _role_policy(template: Template, role_id: str) -> dict[str, dict[str, Any]]:
    by_sid: dict[str, dict[str, Any]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for s in policy["Properties"]["PolicyDocument"]["Statement"]:
                by_sid[s.get("Sid", json.dumps(s["Action"]))] = s
    return by_sid


def _target_role(stacks: Stacks, use: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    offsite = stacks[1][OFFSITE]
    role_id, role = _role(offsite, f"schoolbackup-offsite-{use}")
    return role, _role_policy(offsite, role_id)


# --- the stacks ------------------------------------------------------------------------------------------


def test_home_is_pinned_to_the_home_account_and_deploys_after_the_offsite_and_staging_stacks(
    cross_account: Stacks,
) -> None:
    app, templates = cross_account
    assert set(templates) == {HOME, OFFSITE, STAGING}
    home, offsite, staging = (app.node.find_child(n) for n in (HOME, OFFSITE, STAGING))
    assert isinstance(home, cdk.Stack) and isinstance(offsite, cdk.Stack) and isinstance(staging, cdk.Stack)
    assert home.account == HOME_ACCOUNT
    assert cdk.Token.is_unresolved(home.region)  # the CLI's region, as before
    assert (offsite.account, offsite.region) == (TARGET_ACCOUNT, OFFSITE_REGION)
    assert (staging.account, staging.region) == (HOME_ACCOUNT, OFFSITE_REGION)
    assert offsite in home.dependencies and staging in home.dependencies
    assert not offsite.dependencies and not staging.dependencies


def test_no_staging_stack_when_only_dumps_go_to_the_target_account() -> None:
    _, templates = synth_app(offsite={**CROSS_ACCOUNT_OFFSITE, "kinds": ["dump"]})
    assert set(templates) == {HOME, OFFSITE}
    offsite = templates[OFFSITE]
    names = {r["Properties"]["RoleName"] for r in offsite.find_resources("AWS::IAM::Role").values()}
    assert names == {"schoolbackup-offsite-read"}  # copy and prune have nothing to do there
    role_id, _ = _role(offsite, "schoolbackup-offsite-read")
    assert _actions(_role_policy(offsite, role_id)) == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt"}


def test_same_account_copies_have_no_staging_stack_and_an_unpinned_home() -> None:
    same = {
        key: value for key, value in CROSS_ACCOUNT_OFFSITE.items() if key not in ("account", "home_account")
    }
    app, templates = synth_app(offsite=same)
    assert set(templates) == {HOME, OFFSITE}
    home = app.node.find_child(HOME)
    assert isinstance(home, cdk.Stack) and cdk.Token.is_unresolved(home.account)
    assert not templates[OFFSITE].find_resources("AWS::IAM::Role")  # no roles for another account
    statements = role_statements(templates[HOME], HANDLERS["prune"])
    assert "AssumeTargetPruneRole" not in statements and "DeleteOwnOffsiteDbSnapshots" in statements


# --- replication into the target account --------------------------------------------------------------


def test_replication_rule_names_the_target_account_its_bucket_and_its_key_and_makes_replicas_its_own(
    cross_account: Stacks,
) -> None:
    home = cross_account[1][HOME]
    [bucket] = [
        b
        for b in home.find_resources("AWS::S3::Bucket").values()
        if "ReplicationConfiguration" in b["Properties"]
    ]
    (rule,) = bucket["Properties"]["ReplicationConfiguration"]["Rules"]
    assert rule["Id"] == OFFSITE_REPLICATION_RULE
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    destination = rule["Destination"]
    assert destination["Account"] == TARGET_ACCOUNT
    assert destination["AccessControlTranslation"] == {"Owner": "Destination"}
    assert _join(destination["Bucket"]) == _arn(
        f"arn:aws:s3:::schoolbackup-offsite-{TARGET_ACCOUNT}-{OFFSITE_REGION}"
    )
    assert _join(destination["EncryptionConfiguration"]["ReplicaKmsKeyID"]) == _arn(
        f"arn:aws:kms:{OFFSITE_REGION}:{TARGET_ACCOUNT}:{OFFSITE_KEY_ALIAS}"
    )


def test_replication_role_overrides_the_owner_and_encrypts_with_the_target_accounts_key(
    cross_account: Stacks,
) -> None:
    home = cross_account[1][HOME]
    statements = _policy_statements(home, "AWS::IAM::Policy", "PolicyDocument")
    replicate = statements["ReplicateDumps"]
    assert sorted(replicate["Action"]) == [
        "s3:ObjectOwnerOverrideToBucketOwner",
        "s3:ReplicateObject",
        "s3:ReplicateTags",
    ]
    assert _resources(replicate) == [
        _arn(f"arn:aws:s3:::schoolbackup-offsite-{TARGET_ACCOUNT}-{OFFSITE_REGION}/dumps/*")
    ]
    encrypt = statements["EncryptReplicas"]
    assert _resources(encrypt) == [_arn(f"arn:aws:kms:{OFFSITE_REGION}:{TARGET_ACCOUNT}:key/*")]
    assert encrypt["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": OFFSITE_KEY_ALIAS}
    assert encrypt["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{OFFSITE_REGION}.amazonaws.com"}
    assert "s3:ReplicateDelete" not in json.dumps(statements)
    alarms = home.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "OperationsFailedReplication"}}
    )
    (alarm,) = alarms.values()
    dimensions = {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]}
    assert dimensions["DestinationBucket"] == f"schoolbackup-offsite-{TARGET_ACCOUNT}-{OFFSITE_REGION}"


def test_copy_bucket_lets_the_home_account_replicate_dumps_and_stays_write_once(
    cross_account: Stacks,
) -> None:
    offsite = cross_account[1][OFFSITE]
    statements = _policy_statements(offsite, "AWS::S3::BucketPolicy", "PolicyDocument")
    replicate = statements["HomeReplicatesDumps"]
    assert replicate["Effect"] == "Allow" and replicate["Principal"] == _root(HOME_ACCOUNT)
    assert sorted(replicate["Action"]) == [
        "s3:ObjectOwnerOverrideToBucketOwner",
        "s3:ReplicateObject",
        "s3:ReplicateTags",
    ]
    [objects] = _resources(replicate)
    assert objects.endswith("/dumps/*") and objects.startswith("<CopyBucket")
    versioning = statements["HomeReadsVersioning"]
    assert versioning["Principal"] == _root(HOME_ACCOUNT)
    assert sorted(versioning["Action"]) == ["s3:GetBucketVersioning", "s3:ListBucket"]
    granted = {a for s in statements.values() if s["Effect"] == "Allow" for a in _list(s["Action"])}
    assert "s3:ReplicateDelete" not in granted and "s3:PutBucketVersioning" not in granted
    # still write-once: nobody replicates deletes, nobody overwrites a dump, replicas only SSE-KMS
    assert statements["DenyReplicatedDeletes"]["Effect"] == "Deny"
    assert statements["DenyReplicatedDeletes"]["Principal"] == {"AWS": "*"}
    assert statements["DenyOverwritingDumps"]["Condition"]["Null"] == {"s3:if-none-match": "true"}
    assert statements["DenyOtherEncryption"]["Action"] == ["s3:PutObject", "s3:ReplicateObject"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements.values())


def test_offsite_key_lets_the_home_account_use_it_only_through_s3_there(cross_account: Stacks) -> None:
    offsite = cross_account[1][OFFSITE]
    statements = _policy_statements(offsite, "AWS::KMS::Key", "KeyPolicy")
    grant = statements["HomeReplicationEncryptsReplicas"]
    assert grant["Principal"] == _root(HOME_ACCOUNT)
    assert sorted(grant["Action"]) == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    assert grant["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{OFFSITE_REGION}.amazonaws.com"}}
    to_home = [s for s in statements.values() if s.get("Principal") == _root(HOME_ACCOUNT)]
    assert to_home == [grant]


# --- the roles in the target account --------------------------------------------------------------------


@pytest.mark.parametrize("use", ["copy", "prune", "read"])
def test_each_target_role_is_trusted_by_the_home_account_only(cross_account: Stacks, use: str) -> None:
    role, _ = _target_role(cross_account, use)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": _root(HOME_ACCOUNT)}


def test_read_role_only_reads(cross_account: Stacks) -> None:
    _, statements = _target_role(cross_account, "read")
    actions = _actions(statements)
    assert actions == {
        "ec2:DescribeImages",
        "ec2:DescribeSnapshots",
        "rds:DescribeDBSnapshots",
        "rds:DescribeAccountAttributes",
        "s3:ListBucket",
        "s3:GetObject",
        "kms:Decrypt",
    }
    verbs = ("Delete", "Copy", "Put", "Create", "Modify", "Deregister", "Replicate", "Encrypt")
    assert not [a for a in actions if any(a.split(":")[1].startswith(v) for v in verbs)]
    bucket = _arn(f"arn:aws:s3:::schoolbackup-offsite-{TARGET_ACCOUNT}-{OFFSITE_REGION}")
    assert _resources(statements["ReadOffsiteDumps"]) == [f"{bucket}/dumps/*"]
    assert statements["ListOffsiteDumps"]["Condition"] == {"StringLike": {"s3:prefix": ["dumps/*"]}}
    decrypt = statements["DecryptOffsiteDumps"]
    assert _resources(decrypt) == ["<OffsiteKey8E79E71E.Arn>"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{OFFSITE_REGION}.amazonaws.com"}}


def test_prune_role_deletes_only_schoolbackups_copies_and_copies_nothing(cross_account: Stacks) -> None:
    _, statements = _target_role(cross_account, "prune")
    actions = _actions(statements)
    assert not [a for a in actions if ":Copy" in a]
    assert {a for a in actions if ":Delete" in a or ":Deregister" in a} == {
        "ec2:DeregisterImage",
        "ec2:DeleteSnapshot",
        "rds:DeleteDBSnapshot",
    }
    managed = {"StringEquals": {"aws:ResourceTag/ManagedBy": "schoolbackup"}}
    assert statements["DeregisterOwnOffsiteImages"]["Condition"] == managed
    assert statements["DeleteOwnOffsiteEbsSnapshots"]["Condition"] == managed
    rds = statements["DeleteOwnOffsiteDbSnapshots"]
    assert rds["Condition"] == {"StringEquals": {"rds:snapshot-tag/ManagedBy": "schoolbackup"}}
    assert _resources(rds) == [_arn(f"arn:aws:rds:{OFFSITE_REGION}:{TARGET_ACCOUNT}:snapshot:sb-*")]
    assert _resources(statements["DeregisterOwnOffsiteImages"]) == [
        _arn(f"arn:aws:ec2:{OFFSITE_REGION}::image/*")
    ]


def test_copy_role_copies_shared_staging_copies_under_the_offsite_key_and_deletes_nothing(
    cross_account: Stacks,
) -> None:
    _, statements = _target_role(cross_account, "copy")
    actions = _actions(statements)
    assert not [a for a in actions if ":Delete" in a or ":Deregister" in a or ":Modify" in a]
    assert _resources(statements["CopySharedStagingSnapshots"]) == [
        _arn(f"arn:aws:rds:{OFFSITE_REGION}:{HOME_ACCOUNT}:snapshot:sb-*"),
        _arn(f"arn:aws:rds:{OFFSITE_REGION}:{TARGET_ACCOUNT}:snapshot:sb-*"),
    ]
    assert statements["CopySharedStagingImages"]["Action"] == "ec2:CopyImage"
    for sid in ("TagSnapshotCopiesOnCopy", "TagImageCopies"):  # the copies carry no stage tag
        keys = statements[sid]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
        assert keys == list(COPY_TAG_KEYS), sid
    for sid in ("OffsiteKeyForRds", "OffsiteKeyGrantForRds", "OffsiteKeyForEc2", "OffsiteKeyGrantForEc2"):
        assert _resources(statements[sid]) == ["<OffsiteKey8E79E71E.Arn>"], sid
    staging = [s for sid, s in statements.items() if sid.startswith("SharedStagingKeys")]
    assert len(staging) == 4
    for statement in staging:
        assert _resources(statement) == [_arn(f"arn:aws:kms:{OFFSITE_REGION}:{HOME_ACCOUNT}:key/*")]
        assert statement["Condition"]["ForAnyValue:StringEquals"] == {
            "kms:ResourceAliases": STAGING_KEY_ALIAS
        }
        service = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert service in {f"{s}.{OFFSITE_REGION}.amazonaws.com" for s in ("rds", "ec2")}
    staging_actions = {a for s in staging for a in _list(s["Action"])}
    assert staging_actions == {"kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom", "kms:CreateGrant"}
    grants = [s for s in staging if s["Action"] == "kms:CreateGrant"]
    assert len(grants) == 2
    assert all(g["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"} for g in grants)


# --- the staging key --------------------------------------------------------------------------------------


def test_staging_key_rotates_and_lets_the_target_account_use_it_only_through_rds_and_ec2(
    cross_account: Stacks,
) -> None:
    staging = cross_account[1][STAGING]
    (key_id, key), *_ = staging.find_resources("AWS::KMS::Key").items()
    assert key["Properties"]["EnableKeyRotation"] is True and key["DeletionPolicy"] == "Retain"
    (alias,) = staging.find_resources("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == STAGING_KEY_ALIAS
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    statements = _policy_statements(staging, "AWS::KMS::Key", "KeyPolicy")
    services = [f"rds.{OFFSITE_REGION}.amazonaws.com", f"ec2.{OFFSITE_REGION}.amazonaws.com"]
    use = statements["TargetAccountCopiesStagingCopies"]
    assert use["Principal"] == _root(TARGET_ACCOUNT)
    assert sorted(use["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"]
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": services}}
    grant = statements["TargetAccountGrantsForStagingCopies"]
    assert grant["Principal"] == _root(TARGET_ACCOUNT) and grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {
        "StringEquals": {"kms:ViaService": services},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    to_target = [s for s in statements.values() if s.get("Principal") == _root(TARGET_ACCOUNT)]
    assert to_target == [use, grant]


# --- the home roles ------------------------------------------------------------------------------------


def test_home_roles_assume_each_only_its_one_role_in_the_target_account(cross_account: Stacks) -> None:
    home = cross_account[1][HOME]
    for job, handler in HANDLERS.items():
        assuming = [
            s for s in role_statements(home, handler).values() if "sts:AssumeRole" in _list(s["Action"])
        ]
        assert len(assuming) == 1, job
        (statement,) = assuming
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
        expected = _arn(offsite_role_arn("aws", TARGET_ACCOUNT, "schoolbackup-offsite", ASSUMED[job]))
        assert _resources(statement) == [expected], job
    everyone = _policy_statements(home, "AWS::IAM::Policy", "PolicyDocument")
    assumes = [s for s in everyone.values() if "sts:AssumeRole" in _list(s["Action"])]
    assert {sid for sid, s in everyone.items() if s in assumes} == {
        "AssumeTargetCopyRole",
        "AssumeTargetPruneRole",
        "AssumeTargetReadRole",
    }


def test_home_prune_and_health_roles_no_longer_touch_the_offsite_region_themselves(
    cross_account: Stacks,
) -> None:
    home = cross_account[1][HOME]
    prune = role_statements(home, HANDLERS["prune"])
    assert not [sid for sid in prune if "Offsite" in sid]
    assert OFFSITE_REGION not in json.dumps(
        {sid: s for sid, s in prune.items() if sid != "AssumeTargetPruneRole"}
    )
    for job in ("verify", "report"):
        statements = role_statements(home, HANDLERS[job])
        assert not {"ListOffsiteDumps", "ReadOffsiteDumps", "DecryptOffsiteDumps"} & set(statements), job
        assert "schoolbackup-offsite-" not in json.dumps(
            {sid: s for sid, s in statements.items() if sid != "AssumeTargetReadRole"}
        ), job


def test_home_copy_role_stages_under_the_staging_key_and_shares_and_deletes_only_staging_copies(
    cross_account: Stacks,
) -> None:
    statements = role_statements(cross_account[1][HOME], HANDLERS["copy"])
    staging_key = _arn(f"arn:aws:kms:{OFFSITE_REGION}:{HOME_ACCOUNT}:key/*")
    for sid in ("StagingKeyForRds", "StagingKeyGrantForRds", "StagingKeyForEc2", "StagingKeyGrantForEc2"):
        assert _resources(statements[sid]) == [staging_key], sid
        assert statements[sid]["Condition"]["ForAnyValue:StringEquals"] == {
            "kms:ResourceAliases": STAGING_KEY_ALIAS
        }
    assert OFFSITE_KEY_ALIAS + '"' not in json.dumps(statements)  # the offsite key is the target's now
    assert not [sid for sid in statements if sid.startswith("OffsiteKey")]
    staged = _arn(f"arn:aws:rds:{OFFSITE_REGION}:{HOME_ACCOUNT}:snapshot:sb-*")
    rds_stage = {"StringEquals": {f"rds:snapshot-tag/{STAGE_KEY}": "staging"}}
    for sid, action in (
        ("ShareStagingDbSnapshots", "rds:ModifyDBSnapshotAttribute"),
        ("DeleteStagingDbSnapshots", "rds:DeleteDBSnapshot"),
    ):
        assert statements[sid]["Action"] == action
        assert _resources(statements[sid]) == [staged]
        assert statements[sid]["Condition"] == rds_stage
    ec2_stage = {"StringEquals": {f"ec2:ResourceTag/{STAGE_KEY}": "staging"}}
    images = [
        _arn(f"arn:aws:ec2:{OFFSITE_REGION}::image/*"),
        _arn(f"arn:aws:ec2:{OFFSITE_REGION}::snapshot/*"),
    ]
    for sid, actions in (
        ("ShareStagingImages", ["ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"]),
        ("DeleteStagingImages", ["ec2:DeleteSnapshot", "ec2:DeregisterImage"]),
    ):
        assert sorted(statements[sid]["Action"]) == actions
        assert _resources(statements[sid]) == images
        assert statements[sid]["Condition"] == ec2_stage
    # deleting and sharing: only those statements, each bound to the stage tag
    changing = [
        s
        for s in statements.values()
        if any(":Delete" in a or ":Deregister" in a or ":Modify" in a for a in _list(s["Action"]))
    ]
    assert all(s["Condition"] in (rds_stage, ec2_stage) for s in changing) and len(changing) == 4
    for sid in ("TagSnapshotCopiesOnCopy", "TagImageCopies"):
        keys = statements[sid]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]
        assert keys == [*COPY_TAG_KEYS, STAGE_KEY], sid


# --- cdk-nag ----------------------------------------------------------------------------------------------


def test_all_three_stacks_have_no_unacknowledged_nag_findings(cross_account: Stacks) -> None:
    # built with cdk-nag on: building each template at all proves zero open findings
    assert all(t.to_json()["Resources"] for t in cross_account[1].values())


def _pinned_probe(ack: str | None) -> cdk.Stack:
    app = cdk.App()
    stack = cdk.Stack(app, "PinnedProbe", env=cdk.Environment(account=HOME_ACCOUNT))
    role = iam.Role(stack, "Probe", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["rds:DescribeDBSnapshots"],
            resources=[f"arn:{stack.partition}:rds:{stack.region}:{stack.account}:snapshot:*"],
        )
    )
    if ack is not None:
        acknowledge(
            role,
            f"AwsSolutions::AwsSolutions-IAM5[Resource::{ack}]",
            "A probe role in a test; it only lists snapshots, nothing else.",
        )
    enable_nag(app)
    return stack


def test_an_acknowledgement_naming_the_account_pseudo_parameter_holds_in_a_pinned_stack() -> None:
    """cdk-nag names a pinned stack's account by its id: the acknowledgements written with
    <AWS::AccountId> hold there too (the home stack is pinned with a target account)."""
    resource = "arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:snapshot:*"
    assert Template.from_stack(_pinned_probe(resource)).find_resources("AWS::IAM::Role")
    with pytest.raises(Exception, match=rf"(?s)ValidationFailed.*IAM5.*{HOME_ACCOUNT}:snapshot"):
        Template.from_stack(_pinned_probe(None))
