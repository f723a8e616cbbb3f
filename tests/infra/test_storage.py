"""The backup bucket, its key and its log bucket: every protective property, read from the template."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from tests.infra.conftest import resources_of, synth


def _backup_bucket(template: Template) -> tuple[str, dict[str, Any]]:
    buckets = resources_of(template, "AWS::S3::Bucket")
    locked = {k: v for k, v in buckets.items() if v["Properties"].get("ObjectLockEnabled")}
    assert len(locked) == 1, f"expected exactly one Object Lock bucket, got {list(locked)}"
    return next(iter(locked.items()))


def _log_bucket(template: Template) -> tuple[str, dict[str, Any]]:
    buckets = resources_of(template, "AWS::S3::Bucket")
    others = {k: v for k, v in buckets.items() if not v["Properties"].get("ObjectLockEnabled")}
    assert len(others) == 1
    return next(iter(others.items()))


def test_backup_bucket_is_versioned_kms_encrypted_with_our_rotating_key(template: Template) -> None:
    _, bucket = _backup_bucket(template)
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_ref = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    key = resources_of(template, "AWS::KMS::Key")[key_ref]
    assert key["Properties"]["EnableKeyRotation"] is True


def test_backup_bucket_blocks_all_public_access(template: Template) -> None:
    for _, bucket in (_backup_bucket(template), _log_bucket(template)):
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }


def test_both_buckets_deny_requests_without_tls(template: Template) -> None:
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s["Action"] == "s3:*"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), statements


def test_backup_bucket_has_governance_object_lock_with_default_retention(template: Template) -> None:
    _, bucket = _backup_bucket(template)
    assert bucket["Properties"]["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
    }


def test_object_lock_days_come_from_configuration() -> None:
    template = synth({"bucket": {"object_lock_days": 45, "expiry_days": 120}})
    _, bucket = _backup_bucket(template)
    assert bucket["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"] == 45
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["dumps-to-ia-then-expire"]["ExpirationInDays"] == 120


def test_lifecycle_moves_dumps_to_ia_then_expires_and_cleans_up(template: Template) -> None:
    _, bucket = _backup_bucket(template)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    dumps = rules["dumps-to-ia-then-expire"]
    assert dumps["Prefix"] == "dumps/"
    assert dumps["Transitions"] == [{"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert dumps["ExpirationInDays"] == 90
    assert dumps["Status"] == "Enabled"
    housekeeping = rules["noncurrent-and-housekeeping"]
    assert housekeeping["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert housekeeping["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert housekeeping["ExpiredObjectDeleteMarker"] is True


def test_access_logs_go_to_a_separate_bucket_with_its_own_lifecycle(template: Template) -> None:
    _, bucket = _backup_bucket(template)
    log_id, log_bucket = _log_bucket(template)
    assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_id}
    rules = log_bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("ExpirationInDays") == 365 for r in rules)


def test_buckets_and_key_survive_cdk_destroy(template: Template) -> None:
    for rtype in ("AWS::S3::Bucket", "AWS::KMS::Key"):
        found = resources_of(template, rtype)
        assert found
        for resource in found.values():
            assert resource["DeletionPolicy"] == "Retain", rtype
            assert resource["UpdateReplacePolicy"] == "Retain", rtype


def test_bucket_name_is_an_output(template: Template) -> None:
    outputs = template.find_outputs("*")
    names = [k for k in outputs if k.startswith("StorageBackupBucketName")]
    assert len(names) == 1
    bucket_id, _ = _backup_bucket(template)
    assert outputs[names[0]]["Value"] == {"Ref": bucket_id}


def _bucket_policy_statement(template: Template, sid: str) -> dict[str, Any]:
    for policy in resources_of(template, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == sid:
                found: dict[str, Any] = statement
                return found
    raise AssertionError(f"no bucket policy statement {sid}")


def test_encryption_statements_apply_only_when_the_header_is_sent(template: Template) -> None:
    # A request without SSE headers (UploadPart, CompleteMultipartUpload, a plain PutObject) gets the
    # bucket default (our key); a Deny with ...IfExists would have matched it. Each is Null-guarded.
    sse = "s3:x-amz-server-side-encryption"
    key_id = _bucket_policy_statement(template, "DenyOtherKmsKey")["Condition"]
    assert key_id["Null"] == {f"{sse}-aws-kms-key-id": "false"}
    expected = key_id["StringNotEquals"][f"{sse}-aws-kms-key-id"]
    # compared as sent: the policy must name the key ARN (the dump sends the KmsKeyArn parameter)
    assert expected["Fn::GetAtt"][0].startswith("StorageBackupKey") and expected["Fn::GetAtt"][1] == "Arn"
    assert _bucket_policy_statement(template, "DenyOtherEncryption")["Condition"] == {
        "Null": {sse: "false"},
        "StringNotEquals": {sse: "aws:kms"},
    }
    assert _bucket_policy_statement(template, "DenyCustomerProvidedKeys")["Condition"] == {
        "Null": {f"{sse}-customer-algorithm": "false"}
    }
    for sid in ("DenyOtherEncryption", "DenyOtherKmsKey", "DenyCustomerProvidedKeys"):
        statement = _bucket_policy_statement(template, sid)
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
            "Deny",
            {"AWS": "*"},
            "s3:PutObject",
        )
        assert "IfExists" not in json.dumps(statement)


def test_dumps_are_write_once_for_everybody(template: Template) -> None:
    statement = _bucket_policy_statement(template, "DenyOverwritingDumps")
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        {"AWS": "*"},
        "s3:PutObject",
    )
    assert statement["Resource"]["Fn::Join"][1][-1] == "/dumps/*"
    assert statement["Condition"] == {
        "Null": {"s3:if-none-match": "true"},
        "Bool": {"s3:ObjectCreationOperation": "true"},
    }
