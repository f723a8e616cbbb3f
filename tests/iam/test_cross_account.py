"""Offsite copies into another account, judged by the independent IAM evaluator: the home account H's
replication and jobs against the target account T's copy bucket, offsite key and roles, T's roles against
H's staging key and staging copies (tests/iam/cross_account.py lists the cases)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.common.contracts import (
    BACKUP_BUCKET_CONFIG,
    BACKUP_DB_SNAPSHOT,
    BACKUP_DESTROYING_ACTIONS,
    BACKUP_EBS_SNAPSHOT,
    BACKUP_IMAGE,
    BACKUP_KEY,
    BACKUP_OBJECT,
    OFFSITE_ROLE_NAME,
    OFFSITE_ROLE_USES,
    PRUNE_DESTROYS,
    STAGING_KEY_ALIAS,
    offsite_role_name,
    offsite_stack_name,
    staging_stack_name,
)
from tests.iam.cases import replication, server
from tests.iam.check import IMPLICIT, Principal, evaluate, simulation_for
from tests.iam.cross_account import (
    ALLOWED,
    AMI_COPY_TAGS,
    CASES,
    COPY_ARN,
    COPY_EBS,
    COPY_IMAGE,
    CROSS_ACCOUNT,
    DUMP,
    HOME,
    MARKING,
    RDS_COPY_TAGS,
    TARGET,
    THIRD,
    XREGION,
    XCase,
    admin,
    cross_account_stack,
    outcome,
    staging_key,
    t_role,
)
from tests.iam.requests import IamRequest
from tests.iam.stack import PARTITION, REGION, STACK_NAME, StackModel, stack_for


@pytest.fixture(scope="module")
def stack() -> StackModel:
    return cross_account_stack()


def test_the_three_stacks_are_modelled_in_their_accounts_and_regions(stack: StackModel) -> None:
    assert (stack.stack_name, stack.account, stack.region) == (STACK_NAME, HOME, REGION)
    assert stack.offsite is not None and stack.staging is not None
    assert (stack.offsite.stack_name, stack.offsite.account, stack.offsite.region) == (
        offsite_stack_name(STACK_NAME),
        TARGET,
        XREGION,
    )
    assert (stack.staging.stack_name, stack.staging.account, stack.staging.region) == (
        staging_stack_name(STACK_NAME),
        HOME,
        XREGION,
    )
    assert stack.copy_bucket == f"schoolbackup-offsite-{TARGET}-{XREGION}"
    assert stack.offsite_key_arn.startswith(f"arn:{PARTITION}:kms:{XREGION}:{TARGET}:key/")
    assert stack.staging_key_arn.startswith(f"arn:{PARTITION}:kms:{XREGION}:{HOME}:key/")
    assert stack.key_aliases(stack.staging_key_arn) == (STAGING_KEY_ALIAS,)
    names = {stack.offsite.name(r.logical_id) for r in stack.offsite.of_type("AWS::IAM::Role")}
    assert {offsite_role_name(OFFSITE_ROLE_NAME, use) for use in OFFSITE_ROLE_USES} <= names


def test_a_request_across_accounts_is_asked_as_one(stack: StackModel) -> None:
    """The evaluator gets the resource's own account (the stack holding it), its region, its policy."""
    role = t_role("copy")(stack)
    assert role.arn.startswith(f"arn:{PARTITION}:sts::{TARGET}:assumed-role/")
    (kms,) = staging_key("kms:Decrypt", "rds", TARGET)(stack)
    simulation = simulation_for(stack, role, kms)
    assert simulation["request"]["resource"]["accountId"] == HOME
    assert simulation["request"]["contextVariables"]["aws:RequestedRegion"] == XREGION
    assert simulation["request"]["contextVariables"]["kms:ResourceAliases"] == [STAGING_KEY_ALIAS]
    assert simulation["resourcePolicy"] == stack.resource_policy(stack.staging_key_arn)
    bucket = f"arn:{PARTITION}:s3:::{stack.copy_bucket}"
    h_admin = admin(HOME)(stack)
    assert (
        simulation_for(stack, h_admin, IamRequest("s3:ListBucket", bucket, {}, "t"))["request"]["resource"][
            "accountId"
        ]
        == TARGET
    )
    # RDS has no resource policies: the shared snapshot of H is copied on T's identity policy alone
    copy = IamRequest("rds:CopyDBSnapshot", f"arn:{PARTITION}:rds:{XREGION}:{HOME}:snapshot:sb-x", {}, "t")
    assert simulation_for(stack, role, copy)["request"]["resource"]["accountId"] == TARGET


def test_both_sides_decide_across_accounts(stack: StackModel) -> None:
    """The proof that the harness judges cross-account requests as AWS does: a trust policy that lets in
    a third account's principal is not enough without that principal's own allow, and an identity policy
    allowing everything is not enough without the resource policy."""
    role_arn = f"arn:{PARTITION}:iam::{TARGET}:role/{offsite_role_name(OFFSITE_ROLE_NAME, 'read')}"
    assume = IamRequest("sts:AssumeRole", role_arn, {}, "sts.AssumeRole")
    third = admin(THIRD)(stack)
    assert not evaluate(stack, third, assume).decision.allowed  # trust policy: account H only
    assert evaluate(stack, admin(HOME)(stack), assume).decision.allowed  # trust allows H, H allows all
    nobody = Principal("H without policies", admin(HOME)(stack).arn, (), admin(HOME)(stack).context)
    assert not evaluate(stack, nobody, assume).decision.allowed  # the identity side is required too
    trust: Any = stack.resource_policy(role_arn)
    assert trust is not None and HOME in json.dumps(trust) and THIRD not in json.dumps(trust)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cross_account(stack: StackModel, case: XCase) -> None:
    verdicts = case.verdicts(stack)
    wrong = [v.explain() for v in verdicts if not outcome(v, case.expect)]
    assert not wrong, f"expected {case.expect}:\n" + "\n".join(wrong)


def test_the_cases_include_denials_for_every_part() -> None:
    """Every part has cases that must be denied, and every denial names who and what (no case that
    cannot fail)."""
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "case names are unique"
    denied = [c for c in CASES if c.expect != ALLOWED]
    allowed = [c for c in CASES if c.expect == ALLOWED]
    assert len(denied) > len(allowed) > 20
    for part in ("replication", "-read", "-prune", "-copy", "staging key", "offsite_copy", "assumes T's"):
        assert any(part in c.name for c in denied), part
        assert any(part in c.name for c in allowed), part
    assert any(c.expect not in (ALLOWED, IMPLICIT) for c in denied), "explicit denials are named"


def _copies(stack: StackModel, target_kind: str) -> tuple[str, dict[str, str]]:
    """A copy in T (offsite region) of each kind of backup, with the tags a managed copy carries."""
    tags: dict[str, str] = {}
    if target_kind in (BACKUP_IMAGE, BACKUP_EBS_SNAPSHOT):
        tags = {
            f"{p}/{k}": v for p in ("aws:ResourceTag", "ec2:ResourceTag") for k, v in AMI_COPY_TAGS.items()
        }
    if target_kind == BACKUP_DB_SNAPSHOT:
        tags = {
            f"{p}/{k}": v for p in ("aws:ResourceTag", "rds:snapshot-tag") for k, v in RDS_COPY_TAGS.items()
        }
    return {
        BACKUP_IMAGE: f"arn:{PARTITION}:ec2:{XREGION}::image/{COPY_IMAGE}",
        BACKUP_EBS_SNAPSHOT: f"arn:{PARTITION}:ec2:{XREGION}::snapshot/{COPY_EBS}",
        BACKUP_DB_SNAPSHOT: COPY_ARN,
        BACKUP_OBJECT: f"arn:{PARTITION}:s3:::{stack.copy_bucket}/{DUMP}",
        BACKUP_BUCKET_CONFIG: f"arn:{PARTITION}:s3:::{stack.copy_bucket}",
        BACKUP_KEY: stack.offsite_key_arn,
    }[target_kind], tags


def test_only_t_prune_may_destroy_copies_and_only_managed_ones(stack: StackModel) -> None:
    """The monthly review's question for the copies in T: of every role of the three stacks (and the dump
    server), only T's -prune may destroy a copy, and only prune's own deletions of managed copies."""
    home_functions = [
        Principal.function(stack, fn.properties["Handler"].rsplit(".", 1)[0])
        for fn in stack.of_type("AWS::Lambda::Function")
    ]
    t_roles = [t_role(use)(stack) for use in OFFSITE_ROLE_USES]
    principals = [server(stack), replication(stack), *home_functions, *t_roles]
    allowed = []
    for principal in principals:
        for kind, actions in BACKUP_DESTROYING_ACTIONS.items():
            resource, tags = _copies(stack, kind)
            for action in actions:
                verdict = evaluate(stack, principal, IamRequest(action, resource, tags, "destroy a copy"))
                assert verdict.decision.result != "Error", verdict.explain()
                if verdict.decision.allowed:
                    allowed.append((principal.label, action))
    prune = f"T's {offsite_role_name(OFFSITE_ROLE_NAME, 'prune')} role"
    assert sorted(allowed) == sorted((prune, a) for a in PRUNE_DESTROYS)


def test_the_replication_rule_writes_where_its_role_may(stack: StackModel) -> None:
    """The home bucket's rule, as S3 carries it out: into T's bucket (T's account, T the owner), under
    T's key by its alias; the requests built from the rule itself are allowed on both sides."""
    (bucket,) = [r for r in stack.of_type("AWS::S3::Bucket") if r.properties.get("ReplicationConfiguration")]
    config = stack.resolve(bucket.properties["ReplicationConfiguration"])
    (rule,) = config["Rules"]
    destination = rule["Destination"]
    assert destination["Account"] == TARGET
    assert destination["AccessControlTranslation"] == {"Owner": "Destination"}
    assert destination["Bucket"] == f"arn:{PARTITION}:s3:::{stack.copy_bucket}"
    replica_key = destination["EncryptionConfiguration"]["ReplicaKmsKeyID"]
    assert replica_key == f"arn:{PARTITION}:kms:{XREGION}:{TARGET}:alias/schoolbackup-offsite"
    who = replication(stack)
    assert config["Role"] == who.context["aws:PrincipalArn"]
    obj = f"{destination['Bucket']}/{rule['Filter']['Prefix']}i-0123456789abcdef0/x/files.tar.gz"
    headers = {
        "s3:x-amz-server-side-encryption": "aws:kms",
        "s3:x-amz-server-side-encryption-aws-kms-key-id": replica_key,
    }
    requests = [
        IamRequest("s3:ReplicateObject", obj, headers, "the rule"),
        IamRequest("s3:ReplicateTags", obj, {}, "the rule"),
        IamRequest("s3:ObjectOwnerOverrideToBucketOwner", obj, {}, "the rule (Owner=Destination)"),
    ]
    key_context = {
        "kms:ViaService": f"s3.{XREGION}.amazonaws.com",
        "kms:CallerAccount": HOME,
        "kms:EncryptionContextKeys": ("aws:s3:arn",),
    }
    requests += [
        IamRequest(a, stack.offsite_key_arn, key_context, "the rule's replica key")
        for a in ("kms:GenerateDataKey", "kms:Encrypt")
    ]
    denied = [v.explain() for r in requests if not (v := evaluate(stack, who, r)).allowed]
    assert not denied, "\n".join(denied)


def test_with_only_dumps_copied_there_is_no_staging_stack_and_replication_still_works() -> None:
    dumps_only = {"offsite": {**CROSS_ACCOUNT["offsite"], "kinds": ["dump"]}}
    stack = stack_for(dumps_only)
    assert stack.offsite is not None and stack.offsite.account == TARGET and stack.staging is None
    with pytest.raises(LookupError):
        stack.staging_key_arn  # noqa: B018 - the property raises
    for case in CASES:
        if case.who is replication and case.name.startswith("replication"):
            verdicts = case.verdicts(stack)
            assert all(outcome(v, case.expect) for v in verdicts), [v.explain() for v in verdicts]


@pytest.mark.parametrize("case", MARKING, ids=[c.name for c in MARKING])
def test_the_copy_role_cannot_mark_for_deletion_what_it_did_not_make(stack: StackModel, case: XCase) -> None:
    """Tag-then-delete: the OffsiteStage tag that allows deleting must not be writable on other resources."""
    verdicts = case.verdicts(stack)
    wrong = [v.explain() for v in verdicts if not outcome(v, case.expect)]
    assert not wrong, f"expected {case.expect}:\n" + "\n".join(wrong)
