"""The synthesized policies judged by an independent IAM evaluator (@cloud-copilot/iam-simulate).

What the Lambdas and the dump script really request is checked in the unit and integration tests
that make the requests (tests/unit/conftest.py, tests/integration/conftest.py). Here: what must be
denied, what AWS services do for the stack, and the proof that the evaluator sees the defect this
suite was built for.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.iam.cases import (
    IMPLICIT,
    MUST_DENY,
    OFFSITE,
    OFFSITE_ALLOWED,
    OFFSITE_MUST_DENY,
    Case,
    kms_cases,
    server,
    service_requests,
)
from tests.iam.check import Principal, evaluate
from tests.iam.requests import TABLE, UnmappedOperation, World, iam_requests
from tests.iam.simulator import action_info, global_keys
from tests.iam.stack import OTHER_ACCOUNT, StackModel, stack_for

CASES = (*MUST_DENY, *kms_cases())


@pytest.fixture(scope="module")
def stack() -> StackModel:
    return stack_for()


def _denial(stack: StackModel, case: Case) -> tuple[str, bool]:
    """How the case's request is decided: (the result AWS gives, whether the statement the case names
    is among the deciders), after checking that the request was judged and not allowed."""
    verdict = case.verdict(stack)
    assert not verdict.problems, verdict.explain()
    assert not verdict.decision.allowed, verdict.explain()
    return verdict.decision.result, case.decided_by == IMPLICIT or case.decided_by in verdict.deciders()


def _expected(case: Case) -> tuple[str, bool]:
    return ("ImplicitlyDenied" if case.decided_by == IMPLICIT else "ExplicitlyDenied"), True


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_must_be_denied(stack: StackModel, case: Case) -> None:
    assert _denial(stack, case) == _expected(case), case.verdict(stack).explain()


@pytest.fixture(scope="module")
def offsite_stack() -> StackModel:
    return stack_for(OFFSITE)


@pytest.mark.parametrize("case", OFFSITE_MUST_DENY, ids=[c.name for c in OFFSITE_MUST_DENY])
def test_must_be_denied_offsite(offsite_stack: StackModel, case: Case) -> None:
    assert _denial(offsite_stack, case) == _expected(case), case.verdict(offsite_stack).explain()


@pytest.mark.parametrize("case", OFFSITE_ALLOWED, ids=[c.name for c in OFFSITE_ALLOWED])
def test_s3_replication_may_replicate_dumps(offsite_stack: StackModel, case: Case) -> None:
    verdict = case.verdict(offsite_stack)
    assert verdict.allowed, verdict.explain()


def test_requests_for_the_offsite_stack_are_judged_by_its_policies_in_its_region(
    offsite_stack: StackModel,
) -> None:
    """The copy bucket's and the offsite key's policies are found, the request is made in the offsite
    region, and the offsite key's alias reaches the evaluator (the roles' kms:ResourceAliases condition)."""
    from tests.iam.check import simulation_for

    offsite = offsite_stack.offsite
    assert offsite is not None and offsite.region == "eu-central-1" != offsite_stack.region
    assert offsite_stack.copy_bucket == "schoolbackup-offsite-123456789012-eu-central-1"
    assert offsite_stack.offsite_key_arn.startswith("arn:aws:kms:eu-central-1:123456789012:key/")
    copy_policy = offsite_stack.resource_policy(f"arn:aws:s3:::{offsite_stack.copy_bucket}/dumps/x")
    assert copy_policy is not None
    assert "DenyReplicatedDeletes" in {s.get("Sid") for s in copy_policy["Statement"]}
    assert offsite_stack.resource_policy(offsite_stack.offsite_key_arn) is not None
    case = next(c for c in OFFSITE_ALLOWED if "GenerateDataKey" in c.name)
    assert case.request is not None
    simulation = simulation_for(offsite_stack, case.who(offsite_stack), case.request(offsite_stack))
    variables = simulation["request"]["contextVariables"]
    assert variables["aws:RequestedRegion"] == "eu-central-1"
    assert variables["kms:ResourceAliases"] == ["alias/schoolbackup-offsite"]


def test_what_aws_services_do_for_the_stack_is_allowed(stack: StackModel) -> None:
    seen = list(service_requests(stack))
    kinds = {s.label.split()[0] for s in seen}
    assert {"schedule", "alarm", "rule", "access", "the"} <= kinds, kinds
    assert sum(s.request.action == "sns:Publish" for s in seen) >= 10, "every alarm and the dump rule"
    denied = [v.explain() for s in seen if not (v := evaluate(stack, s.principal, s.request)).allowed]
    assert not denied, "\n".join(denied)


def test_the_same_services_acting_for_another_account_are_denied(stack: StackModel) -> None:
    seen = list(service_requests(stack, account=OTHER_ACCOUNT))
    assert {s.label.split()[0] for s in seen} >= {"schedule", "alarm", "rule", "access"}
    allowed = [v.explain() for s in seen if (v := evaluate(stack, s.principal, s.request)).allowed]
    assert not allowed, "\n".join(allowed)


def _with_old_encryption_statements(stack: StackModel) -> StackModel:
    """The stack as it was: two Deny statements with StringNotEqualsIfExists on the SSE headers."""
    template: dict[str, Any] = copy.deepcopy(dict(stack.template))
    resources = template["Resources"]
    policy_id = next(
        k for k, r in resources.items() if r["Type"] == "AWS::S3::BucketPolicy" and "Backup" in k
    )
    bucket = resources[policy_id]["Properties"]["Bucket"]["Ref"]
    key = next(k for k, r in resources.items() if r["Type"] == "AWS::KMS::Key")
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}
    doc = resources[policy_id]["Properties"]["PolicyDocument"]
    doc["Statement"] = [
        s for s in doc["Statement"] if s.get("Sid") not in ("DenyOtherEncryption", "DenyOtherKmsKey")
    ]
    doc["Statement"] += [
        {
            "Sid": "DenyNonKmsEncryption",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {
            "Sid": "DenyWrongKmsKey",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                "StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": {"Fn::GetAtt": [key, "Arn"]}
                }
            },
        },
    ]
    return StackModel(template)


@pytest.mark.parametrize(
    ("who", "operation", "params"),
    [
        (
            server,
            "UploadPart",
            {"Key": "dumps/i-0123456789abcdef0/x/files.tar.gz", "UploadId": "u", "PartNumber": 2},
        ),
        (
            server,
            "CompleteMultipartUpload",
            {"Key": "dumps/i-0123456789abcdef0/x/files.tar.gz", "UploadId": "u", "IfNoneMatch": "*"},
        ),
        (
            lambda s: Principal.function(s, "lambdas.restore_test.handler"),
            "PutObject",
            {"Key": "reports/restore-tests/20261130T0600Z.json", "IfNoneMatch": "*"},
        ),
    ],
    ids=["server UploadPart", "server CompleteMultipartUpload", "restore_test record"],
)
def test_the_evaluator_sees_what_the_old_bucket_policy_did_to_the_first_night(
    stack: StackModel, who: Any, operation: str, params: dict[str, Any]
) -> None:
    """The requests as the code makes them (no SSE headers) are allowed now and were explicitly denied
    by the old statements: with them, the authorization tests fail."""
    old = _with_old_encryption_statements(stack)
    for model, allowed in ((stack, True), (old, False)):
        world = World(model, buckets=frozenset({model.backup_bucket}))
        s3_request = iam_requests("s3", operation, {"Bucket": model.backup_bucket, **params}, world)[0]
        verdict = evaluate(model, who(model), s3_request)
        assert verdict.decision.allowed is allowed, verdict.explain()
    old_verdict = evaluate(
        old,
        who(old),
        iam_requests(
            "s3",
            operation,
            {"Bucket": old.backup_bucket, **params},
            World(old, buckets=frozenset({old.backup_bucket})),
        )[0],
    )
    assert {"DenyNonKmsEncryption", "DenyWrongKmsKey"} <= set(old_verdict.deciders())


@pytest.mark.parametrize(
    "row", sorted(TABLE.values(), key=lambda r: (r.service, r.name)), ids=lambda r: f"{r.service}.{r.name}"
)
def test_each_row_of_the_mapping_agrees_with_the_authorization_data(row: Any) -> None:
    for action, keys in ((row.action, row.keys), *row.follow_up):
        info = action_info(action)
        assert info.exists, f"{row.service}.{row.name}: {action} is not an IAM action"
        supported = info.keys_for(None) | global_keys()
        unsupported = [k for k in keys if k.lower() not in supported]
        assert not unsupported, f"{row.service}.{row.name}: {action} does not support {unsupported}"


def test_an_operation_missing_from_the_mapping_fails_instead_of_being_skipped(stack: StackModel) -> None:
    with pytest.raises(UnmappedOperation, match=r"ec2\.StopInstances has no row"):
        iam_requests("ec2", "StopInstances", {"InstanceIds": ["i-1"]}, World(stack))


def test_no_policy_conditions_on_what_the_evaluator_cannot_see(stack: StackModel) -> None:
    """The evaluator ignores kms:EncryptionContext:<key> values; a condition on one would be judged
    as if the key were absent. None of our policies may depend on one."""
    found = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and k.lower().startswith("kms:encryptioncontext:"):
                    found.append(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(stack.template["Resources"])
    assert not found, found


@pytest.mark.parametrize("offsite", [False, True], ids=["home", "with offsite copies"])
def test_every_grant_to_an_aws_service_is_bound_to_this_account(
    stack: StackModel, offsite_stack: StackModel, offsite: bool
) -> None:
    """Resource policies (bucket, key, topic, queue) and the trust policies of the schedules' roles, in
    both stacks: a service principal is allowed only with aws:SourceAccount and aws:SourceArn (confused
    deputy). The replication role is the one exception: AWS documents its trust policy without them and
    does not say S3 sends them when it assumes the role, so a condition could stop every replication;
    only a principal of this account holding iam:PassRole on it can name it in a replication rule."""
    documents: list[tuple[str, dict[str, Any]]] = []
    if offsite:
        stack = offsite_stack
        assert stack.offsite is not None
        documents += _service_grant_documents(stack.offsite)
    documents += _service_grant_documents(stack)
    grants = 0
    for where, doc in documents:
        for statement in doc["Statement"]:
            if statement["Effect"] != "Allow" or "Service" not in statement.get("Principal", {}):
                continue
            grants += 1
            condition = json.dumps(statement.get("Condition", {}))
            assert "aws:SourceAccount" in condition and "aws:SourceArn" in condition, (where, statement)
    assert grants >= 10, "the topic, the key, the log bucket and every schedule role"
    replication = [
        stack.trust_policy(r.logical_id)
        for r in stack.of_type("AWS::IAM::Role")
        if "s3.amazonaws.com" in json.dumps(r.properties["AssumeRolePolicyDocument"])
    ]
    if offsite:  # S3 and nothing else may assume it, for nothing but sts:AssumeRole
        [trust] = replication
        [statement] = trust["Statement"]
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"
    else:
        assert replication == []


def _service_grant_documents(stack: StackModel) -> list[tuple[str, dict[str, Any]]]:
    documents: list[tuple[str, dict[str, Any]]] = []
    for rtype, prop in (
        ("AWS::S3::BucketPolicy", "PolicyDocument"),
        ("AWS::SNS::TopicPolicy", "PolicyDocument"),
        ("AWS::SQS::QueuePolicy", "PolicyDocument"),
        ("AWS::KMS::Key", "KeyPolicy"),
    ):
        documents += [(r.logical_id, stack.resolve(r.properties[prop])) for r in stack.of_type(rtype)]
    documents += [
        (r.logical_id, stack.trust_policy(r.logical_id))
        for r in stack.of_type("AWS::IAM::Role")
        if any(
            f"{svc}.amazonaws.com" in json.dumps(r.properties["AssumeRolePolicyDocument"])
            for svc in ("scheduler",)
        )
    ]
    return documents
