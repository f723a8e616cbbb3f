"""Offsite copies of dumps: the offsite stack (copy bucket, offsite key, its alarm) and the home bucket's
S3 replication into it, read from the templates of both stacks as app.py builds them."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.config import load_config
from infra.nag import enable_nag
from infra.offsite import add_offsite_stack
from infra.stack import BackupStack
from lambdas.common.contracts import OFFSITE_KEY_ALIAS, OFFSITE_REPLICATION_RULE, offsite_stack_name
from tests.iam.stack import context_with, merged_settings

OFFSITE_REGION = "eu-central-1"


def synth_both(offsite: dict[str, Any]) -> tuple[Template, Template | None]:
    """The home and the offsite template (None without offsite copies), with cdk-nag active."""
    settings = merged_settings({"offsite": offsite})
    config = load_config(settings)
    app = cdk.App(context=context_with(settings))
    home = BackupStack(app, "SchoolBackup", config=config)
    other = add_offsite_stack(app, home, config)
    enable_nag(app)
    return Template.from_stack(home), Template.from_stack(other) if other else None


@pytest.fixture(scope="module")
def both() -> tuple[Template, Template]:
    home, offsite = synth_both({"enabled": True, "region": OFFSITE_REGION, "kinds": ["dump", "rds", "ami"]})
    assert offsite is not None
    return home, offsite


def _one(template: Template, rtype: str, **match: Any) -> tuple[str, dict[str, Any]]:
    found = {
        k: v
        for k, v in template.find_resources(rtype).items()
        if all(v["Properties"].get(p) == x for p, x in match.items())
    }
    assert len(found) == 1, list(found)
    return next(iter(found.items()))


def _join(value: Any) -> str:
    """A Fn::Join of literals and pseudo parameters as text (``${AWS::AccountId}``)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    sep, parts = value["Fn::Join"]
    return str(sep).join(_join(p) for p in parts)


def _statements(template: Template, rtype: str, prop: str) -> dict[str, dict[str, Any]]:
    by_sid: dict[str, dict[str, Any]] = {}
    for res in template.find_resources(rtype).values():
        for s in res["Properties"][prop]["Statement"]:
            by_sid[s.get("Sid", json.dumps(s["Action"]))] = s
    return by_sid


def test_the_offsite_stack_is_in_the_offsite_region_and_home_deploys_after_it() -> None:
    settings = merged_settings({"offsite": {"enabled": True, "region": OFFSITE_REGION}})
    config = load_config(settings)
    app = cdk.App(context=context_with(settings))
    home = BackupStack(app, "SchoolBackup", config=config)
    offsite = add_offsite_stack(app, home, config)
    assert offsite is not None
    assert offsite.stack_name == offsite_stack_name("SchoolBackup") == "SchoolBackup-Offsite"
    assert offsite.region == OFFSITE_REGION
    assert cdk.Token.is_unresolved(offsite.account)  # the CLI's account, as for the home stack
    assert offsite in home.dependencies


def test_copy_bucket_is_versioned_locked_and_encrypted_with_the_rotating_offsite_key(
    both: tuple[Template, Template],
) -> None:
    _, offsite = both
    _, bucket = _one(offsite, "AWS::S3::Bucket", ObjectLockEnabled=True)
    props = bucket["Properties"]
    assert _join(props["BucketName"]) == "schoolbackup-offsite-${AWS::AccountId}-" + OFFSITE_REGION
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
    }
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is True
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    key = offsite.find_resources("AWS::KMS::Key")[key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain" and bucket["DeletionPolicy"] == "Retain"
    (alias,) = offsite.find_resources("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == OFFSITE_KEY_ALIAS
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-dump-copies"]["Prefix"] == "dumps/"
    assert rules["expire-dump-copies"]["ExpirationInDays"] == 35  # offsite.retention.max_age_days
    assert rules["noncurrent-and-housekeeping"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }


def test_copy_bucket_is_tls_only_write_once_and_refuses_replicated_deletes(
    both: tuple[Template, Template],
) -> None:
    _, offsite = both
    bucket_id, _ = _one(offsite, "AWS::S3::Bucket", ObjectLockEnabled=True)
    [policy] = [
        p
        for p in offsite.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s.get("Sid"): s for s in statements}
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
    assert by_sid["DenyReplicatedDeletes"]["Effect"] == "Deny"
    assert by_sid["DenyReplicatedDeletes"]["Action"] == "s3:ReplicateDelete"
    assert by_sid["DenyOverwritingDumps"]["Condition"]["Null"] == {"s3:if-none-match": "true"}
    for sid in ("DenyOtherEncryption", "DenyCustomerProvidedKeys"):
        assert by_sid[sid]["Action"] == ["s3:PutObject", "s3:ReplicateObject"], sid
    # The key id of a replica is not compared (its form is not documented; a wrong guess would deny
    # every replica): only PutObject must name the offsite key, by its ARN.
    assert by_sid["DenyOtherKmsKey"]["Action"] == "s3:PutObject"
    allowed = by_sid["DenyOtherKmsKey"]["Condition"]["StringNotEquals"][
        "s3:x-amz-server-side-encryption-aws-kms-key-id"
    ]
    assert allowed == {"Fn::GetAtt": [_one(offsite, "AWS::KMS::Key")[0], "Arn"]}


def test_home_bucket_replicates_dumps_to_the_copy_bucket_with_the_offsite_key(
    both: tuple[Template, Template],
) -> None:
    home, _ = both
    _, bucket = _one(home, "AWS::S3::Bucket", ObjectLockEnabled=True)
    replication = bucket["Properties"]["ReplicationConfiguration"]
    role_id = replication["Role"]["Fn::GetAtt"][0]
    role = home.find_resources("AWS::IAM::Role")[role_id]
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"}
    # AWS documents no aws:SourceAccount/SourceArn for S3 assuming a replication role: a condition on
    # them could make every replication fail (AssumeRoleNotPermitted); PassRole guards the role instead
    assert "Condition" not in trust
    (rule,) = replication["Rules"]
    assert rule["Id"] == OFFSITE_REPLICATION_RULE and rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": "dumps/"}
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    destination = rule["Destination"]
    assert _join(destination["Bucket"]) == (
        "arn:${AWS::Partition}:s3:::schoolbackup-offsite-${AWS::AccountId}-" + OFFSITE_REGION
    )
    assert _join(destination["EncryptionConfiguration"]["ReplicaKmsKeyID"]) == (
        f"arn:${{AWS::Partition}}:kms:{OFFSITE_REGION}:${{AWS::AccountId}}:{OFFSITE_KEY_ALIAS}"
    )
    # S3 refuses an EventThreshold without Replication Time Control (the deploy would fail)
    assert destination["Metrics"] == {"Status": "Enabled"}
    assert "ReplicationTime" not in destination  # no RTC: it costs per GB


def test_the_replication_role_may_do_exactly_what_replication_needs(both: tuple[Template, Template]) -> None:
    home, _ = both
    statements = _statements(home, "AWS::IAM::Policy", "PolicyDocument")
    assert statements["ReadReplicationConfiguration"]["Action"] == [
        "s3:GetReplicationConfiguration",
        "s3:ListBucket",
    ]
    assert set(statements["ReadDumpsForReplication"]["Action"]) == {
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
    }
    replicate = statements["ReplicateDumps"]
    assert replicate["Action"] == ["s3:ReplicateObject", "s3:ReplicateTags"]
    assert _join(replicate["Resource"]).endswith(f"-{OFFSITE_REGION}/dumps/*")
    assert statements["DecryptDumps"]["Action"] == "kms:Decrypt"
    encrypt = statements["EncryptReplicas"]
    # Decrypt too: replicas use S3 Bucket Keys, which replication must be able to decrypt
    assert sorted(encrypt["Action"]) == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    assert (
        _join(encrypt["Resource"])
        == f"arn:${{AWS::Partition}}:kms:{OFFSITE_REGION}:${{AWS::AccountId}}:key/*"
    )
    assert encrypt["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": OFFSITE_KEY_ALIAS},
        "StringEquals": {"kms:ViaService": f"s3.{OFFSITE_REGION}.amazonaws.com"},
    }
    everything = json.dumps(statements)
    assert "s3:ReplicateDelete" not in everything and 's3:PutObject"' not in json.dumps(
        [statements[s] for s in ("ReplicateDumps", "ReadDumpsForReplication")]
    )


def test_replication_alarms_go_to_each_regions_topic(both: tuple[Template, Template]) -> None:
    home, offsite = both
    _, failed = _one(home, "AWS::CloudWatch::Alarm", AlarmName="SchoolBackup-ReplicationFailed")
    props = failed["Properties"]
    assert props["Namespace"] == "AWS/S3" and props["MetricName"] == "OperationsFailedReplication"
    assert {d["Name"] for d in props["Dimensions"]} == {"SourceBucket", "DestinationBucket", "RuleId"}
    assert {"Name": "RuleId", "Value": OFFSITE_REPLICATION_RULE} in props["Dimensions"]
    assert props["Threshold"] == 0 and props["TreatMissingData"] == "notBreaching"
    home_topic = next(iter(home.find_resources("AWS::SNS::Topic")))
    assert props["AlarmActions"] == [{"Ref": home_topic}]

    _, late = _one(offsite, "AWS::CloudWatch::Alarm", AlarmName="SchoolBackup-ReplicationLate")
    props = late["Properties"]
    assert props["Threshold"] == 120 * 60  # offsite.replication_alarm_minutes, in seconds
    assert props["TreatMissingData"] == "notBreaching"
    query = _join(props["Metrics"][0]["Expression"])
    assert "MAX(ReplicationLatency)" in query and f"RuleId = '{OFFSITE_REPLICATION_RULE}'" in query
    offsite_topic = next(iter(offsite.find_resources("AWS::SNS::Topic")))
    assert props["AlarmActions"] == [{"Ref": offsite_topic}]
    assert "AlarmDescription" in props and "offsite" in props["AlarmDescription"]


def test_home_stack_refuses_to_deploy_into_the_offsite_region(both: tuple[Template, Template]) -> None:
    home, _ = both
    rules = home.to_json()["Rules"]
    [rule] = [r for k, r in rules.items() if "OffsiteRegionDiffers" in k]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"}, OFFSITE_REGION]}]}
    assert "offsite.region" in assertion["AssertDescription"]


def test_outputs_name_the_copy_bucket_and_the_key(both: tuple[Template, Template]) -> None:
    _, offsite = both
    outputs = offsite.to_json()["Outputs"]
    assert {"CopyBucketName", "OffsiteKeyArn"} <= set(outputs)


def test_copies_of_snapshots_only_deploy_no_replication() -> None:
    home, offsite = synth_both({"enabled": True, "region": OFFSITE_REGION, "kinds": ["rds"]})
    assert offsite is not None
    _, bucket = _one(home, "AWS::S3::Bucket", ObjectLockEnabled=True)
    assert "ReplicationConfiguration" not in bucket["Properties"]
    assert "ReplicationFailed" not in json.dumps(home.to_json())
    assert any("OffsiteRegionDiffers" in k for k in home.to_json()["Rules"])


def test_offsite_off_means_no_replication_no_role_and_no_second_stack(template: Template) -> None:
    _, bucket = _one(template, "AWS::S3::Bucket", ObjectLockEnabled=True)
    assert "ReplicationConfiguration" not in bucket["Properties"]
    trusts = json.dumps(
        [
            r["Properties"]["AssumeRolePolicyDocument"]
            for r in template.find_resources("AWS::IAM::Role").values()
        ]
    )
    assert "s3.amazonaws.com" not in trusts
    assert not any("Offsite" in k for k in template.to_json().get("Rules", {}))
    config = load_config(merged_settings({}))
    app = cdk.App(context=context_with(merged_settings({})))
    assert add_offsite_stack(app, BackupStack(app, "SchoolBackup", config=config), config) is None
    assert [s.node.id for s in app.node.children if isinstance(s, cdk.Stack)] == ["SchoolBackup"]


def test_both_stacks_have_no_unacknowledged_nag_findings(both: tuple[Template, Template]) -> None:
    # both were built with cdk-nag on: building them at all proves zero open findings
    home, offsite = both
    assert home.to_json()["Resources"] and offsite.to_json()["Resources"]
