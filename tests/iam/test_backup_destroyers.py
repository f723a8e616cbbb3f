"""Before deployment, the same question the monthly IAM review asks AWS afterwards: who of the stack may
destroy or alter a backup (contracts.BACKUP_DESTROYING_ACTIONS, the one list both use)? Nobody, except
the prune function's own deletions of what carries ManagedBy=schoolbackup; and the must-deny table covers
every destroying action of the bucket for the web server."""

from __future__ import annotations

import pytest

from lambdas.common.contracts import (
    BACKUP_BUCKET_CONFIG,
    BACKUP_DB_SNAPSHOT,
    BACKUP_DESTROYING_ACTIONS,
    BACKUP_EBS_SNAPSHOT,
    BACKUP_IMAGE,
    BACKUP_KEY,
    BACKUP_OBJECT,
    PRUNE_DESTROYS,
)
from tests.iam.cases import MUST_DENY, server
from tests.iam.check import Principal, evaluate
from tests.iam.requests import IamRequest, World, iam_requests
from tests.iam.stack import ACCOUNT, PARTITION, REGION, StackModel, stack_for

OURS = {"ManagedBy": "schoolbackup", "BackupJob": "ami-weekly", "BackupSource": "i-0aaaaaaaaaaaaaaaa"}


@pytest.fixture(scope="module")
def stack() -> StackModel:
    return stack_for()


def _resource(stack: StackModel, target: str) -> tuple[str, dict[str, str]]:
    tags: dict[str, str] = {}
    if target in (BACKUP_IMAGE, BACKUP_EBS_SNAPSHOT):
        tags = {f"{p}/{k}": v for p in ("aws:ResourceTag", "ec2:ResourceTag") for k, v in OURS.items()}
    if target == BACKUP_DB_SNAPSHOT:
        tags = {f"{p}/{k}": v for p in ("aws:ResourceTag", "rds:snapshot-tag") for k, v in OURS.items()}
    return {
        BACKUP_IMAGE: f"arn:{PARTITION}:ec2:{REGION}::image/ami-0aaaaaaaaaaaaaaaa",
        BACKUP_EBS_SNAPSHOT: f"arn:{PARTITION}:ec2:{REGION}::snapshot/snap-0aaaaaaaaaaaaaaaa",
        BACKUP_DB_SNAPSHOT: f"arn:{PARTITION}:rds:{REGION}:{ACCOUNT}:snapshot:sb-school-db-20261101-0230",
        BACKUP_OBJECT: f"arn:{PARTITION}:s3:::{stack.backup_bucket}/dumps/i-0aaaaaaaaaaaaaaaa/x/files.tar.gz",
        BACKUP_BUCKET_CONFIG: f"arn:{PARTITION}:s3:::{stack.backup_bucket}",
        BACKUP_KEY: stack.key_arn,
    }[target], tags


def _principals(stack: StackModel) -> list[Principal]:
    functions = [
        Principal.function(stack, fn.properties["Handler"].rsplit(".", 1)[0])
        for fn in stack.of_type("AWS::Lambda::Function")
    ]
    return [server(stack), *functions]


def test_only_prune_may_destroy_backups_and_only_with_the_managed_by_tag(stack: StackModel) -> None:
    allowed = []
    for principal in _principals(stack):
        for target, actions in BACKUP_DESTROYING_ACTIONS.items():
            resource, tags = _resource(stack, target)
            for action in actions:
                verdict = evaluate(stack, principal, IamRequest(action, resource, tags, "destroy a backup"))
                assert verdict.decision.result != "Error", verdict.explain()
                if verdict.decision.allowed:
                    allowed.append((principal.label, action))
    assert sorted(allowed) == sorted(("the prune function", a) for a in PRUNE_DESTROYS)


def test_the_must_deny_table_covers_every_destroying_action_on_the_bucket_for_the_server(
    stack: StackModel,
) -> None:
    world = World(stack, buckets=frozenset({stack.backup_bucket}))
    denied = {
        r.action
        for case in MUST_DENY
        if case.who is server
        for r in iam_requests(case.service, case.operation, case.params(stack), world)
    }
    bucket_actions = {
        *BACKUP_DESTROYING_ACTIONS[BACKUP_OBJECT],
        *BACKUP_DESTROYING_ACTIONS[BACKUP_BUCKET_CONFIG],
    }
    assert bucket_actions <= denied, sorted(bucket_actions - denied)
