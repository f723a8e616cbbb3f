"""The monthly IAM review: who in the account could hurt the backups, and which doors are left open.

Findings (``reports/iam/<YYYY-MM>.json``, DESIGN.md; ``detail`` is English data, the mail and backupctl
say what to do in the configured language):

- ``root-without-mfa`` (high): the account summary says the root user has no MFA device.
- ``console-user-without-mfa`` (high): a user signs in with a password and has no MFA (credential report).
- ``access-key-old`` (medium): an active access key created or last rotated more than 90 days ago.
- ``access-key-unused`` (medium): an active key not used for 90 days, or never used and older than 90 days.
- ``admin-access`` (high): a user, a member of a group or a role with AdministratorAccess or a statement
  that allows ``"Action": "*"`` on ``"Resource": "*"``.
- ``can-delete-backups`` (high): a user or role that AWS's own policy simulator
  (iam:SimulatePrincipalPolicy: identity policies, groups, permissions boundary, explicit denies) allows
  one of contracts.BACKUP_DESTROYING_ACTIONS on this stack's backups. Effective permissions, not policy text.
- ``stack-role-drift`` (high): a role of this stack has an inline policy, an allowed action or a managed
  policy that the deployed template does not define (someone changed it by hand).

The record is written once per month (If-None-Match); a repeated run of the month returns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from lambdas.common.aws.errors import error_code
from lambdas.common.aws.iam_account import (
    AccountIam,
    CredentialRow,
    IamPrincipal,
    Policy,
    Question,
    account_iam,
    allowed,
    credential_report,
    root_has_mfa,
)
from lambdas.common.aws.records import read_record, write_record_once
from lambdas.common.aws.stack_roles import DefinedRole, defined_roles, live_actions
from lambdas.common.contracts import (
    BACKUP_BUCKET_CONFIG,
    BACKUP_DB_SNAPSHOT,
    BACKUP_DESTROYING_ACTIONS,
    BACKUP_EBS_SNAPSHOT,
    BACKUP_IMAGE,
    BACKUP_KEY,
    BACKUP_OBJECT,
    DUMP_PREFIX,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    NAME_PREFIX,
    PRUNE_DESTROYS,
    SEVERITIES,
    iam_review_record_key,
    previous_month,
)
from lambdas.common.observability import logger
from lambdas.common.settings import IamReviewSettings

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client

HIGH: Final = "high"
MEDIUM: Final = "medium"
LOW: Final = "low"
KEY_MAX_AGE: Final = timedelta(days=90)
KEY_MAX_UNUSED: Final = timedelta(days=90)

ROOT_WITHOUT_MFA: Final = "root-without-mfa"
CONSOLE_WITHOUT_MFA: Final = "console-user-without-mfa"
KEY_OLD: Final = "access-key-old"
KEY_UNUSED: Final = "access-key-unused"
ADMIN_ACCESS: Final = "admin-access"
CAN_DELETE_BACKUPS: Final = "can-delete-backups"
STACK_ROLE_DRIFT: Final = "stack-role-drift"
KINDS: Final = (
    ROOT_WITHOUT_MFA,
    CONSOLE_WITHOUT_MFA,
    KEY_OLD,
    KEY_UNUSED,
    ADMIN_ACCESS,
    CAN_DELETE_BACKUPS,
    STACK_ROLE_DRIFT,
)
SEVERITY_OF: Final = {
    ROOT_WITHOUT_MFA: HIGH,
    CONSOLE_WITHOUT_MFA: HIGH,
    KEY_OLD: MEDIUM,
    KEY_UNUSED: MEDIUM,
    ADMIN_ACCESS: HIGH,
    CAN_DELETE_BACKUPS: HIGH,
    STACK_ROLE_DRIFT: HIGH,
}


@dataclass(frozen=True)
class Finding:
    kind: str
    principal: str  # an ARN (the root user: arn:aws:iam::<account>:root)
    detail: str  # English, for the record

    @property
    def severity(self) -> str:
        return SEVERITY_OF[self.kind]

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "principal": self.principal,
            "detail": self.detail,
            "severity": self.severity,
        }


def _day(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y-%m-%d}"


# --- the credential report and the root user --------------------------------------------------------


def credential_findings(rows: Iterable[CredentialRow], now: datetime) -> list[Finding]:
    """Console users without MFA, and old or unused active access keys (the root user's too)."""
    found: list[Finding] = []
    for row in rows:
        if not row.is_root and row.password_enabled and not row.mfa_active:
            found.append(
                Finding(
                    CONSOLE_WITHOUT_MFA,
                    row.arn,
                    "signs in to the console with a password and has no MFA device",
                )
            )
        for key in row.keys:
            since = key.last_rotated or row.created
            if since is None:
                continue
            age = now - since
            if age > KEY_MAX_AGE:
                found.append(
                    Finding(
                        KEY_OLD,
                        row.arn,
                        f"access key {key.number} was created or last rotated on {_day(since)}, {age.days} days "
                        f"ago (at most {KEY_MAX_AGE.days})",
                    )
                )
            if key.last_used is None and age > KEY_MAX_UNUSED:
                found.append(
                    Finding(
                        KEY_UNUSED,
                        row.arn,
                        f"access key {key.number} has never been used in its {age.days} days",
                    )
                )
            elif key.last_used is not None and now - key.last_used > KEY_MAX_UNUSED:
                idle = (now - key.last_used).days
                found.append(
                    Finding(
                        KEY_UNUSED,
                        row.arn,
                        f"access key {key.number} was last used on {_day(key.last_used)}, {idle} days ago",
                    )
                )
    return found


def root_arn(settings: IamReviewSettings) -> str:
    return f"arn:{settings.partition}:iam::{settings.account}:root"


# --- admin-grade policies ---------------------------------------------------------------------------


def _allows_everything(policy: Policy) -> str:
    return f"{'inline' if policy.inline else 'managed'} policy {policy.name} allows everything (* on *)"


def _admin_reasons(principal: IamPrincipal) -> list[str]:
    admin = "AdministratorAccess"
    reasons = [
        "has AdministratorAccess attached" if p.name == admin else _allows_everything(p)
        for p in principal.policies
        if p.allows_everything()
    ]
    reasons += [
        f"is a member of group {group}, whose "
        + ("AdministratorAccess allows everything" if p.name == admin else _allows_everything(p))
        for group, p in principal.group_policies
        if p.allows_everything()
    ]
    return reasons


def admin_findings(account: AccountIam) -> list[Finding]:
    return [
        Finding(ADMIN_ACCESS, p.arn, "; ".join(reasons))
        for p in account.principals()
        if (reasons := _admin_reasons(p))
    ]


# --- who may destroy the backups (AWS's own evaluation) ----------------------------------------------


def backup_resources(settings: IamReviewSettings) -> dict[str, str]:
    """A representative ARN of each kind of thing a backup of this stack is (names as the jobs make them)."""
    p, region, account, bucket = settings.partition, settings.region, settings.account, settings.bucket
    return {
        BACKUP_IMAGE: f"arn:{p}:ec2:{region}::image/ami-00000000000000000",
        BACKUP_EBS_SNAPSHOT: f"arn:{p}:ec2:{region}::snapshot/snap-00000000000000000",
        BACKUP_DB_SNAPSHOT: f"arn:{p}:rds:{region}:{account}:snapshot:{NAME_PREFIX}example-20260101-0000",
        BACKUP_OBJECT: f"arn:{p}:s3:::{bucket}/{DUMP_PREFIX}/example/manifest.json",
        BACKUP_BUCKET_CONFIG: f"arn:{p}:s3:::{bucket}",
        BACKUP_KEY: settings.key_arn,
    }


def _what(target: str, settings: IamReviewSettings) -> str:
    return {
        BACKUP_IMAGE: "schoolbackup's AMIs",
        BACKUP_EBS_SNAPSHOT: "their EBS snapshots",
        BACKUP_DB_SNAPSHOT: f"schoolbackup's RDS snapshots ({NAME_PREFIX}*)",
        BACKUP_OBJECT: f"objects in s3://{settings.bucket}",
        BACKUP_BUCKET_CONFIG: f"the bucket {settings.bucket}",
        BACKUP_KEY: "the backup key",
    }[target]


# Every backup carries ManagedBy=schoolbackup; requests to AWS go over TLS (the bucket refuses others).
_BACKUP_CONTEXT: Final = {
    f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
    f"ec2:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
    f"rds:snapshot-tag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE,
    "aws:SecureTransport": "true",
}


def questions(
    settings: IamReviewSettings, policies: Mapping[str, str | None], *, is_user: bool
) -> list[Question]:
    """One question per kind of target: its destroying actions on a backup of that kind (an action is only
    asked about the resource type it acts on), with that resource's own policy (``policies``: the bucket
    policy for S3, the key policy for the key).

    AWS accepts a ResourcePolicy only with an IAM user as the caller (CallerArn), so roles are asked about
    their identity policies alone. For this stack that misses nothing: the bucket policy holds only Deny
    statements (which can only remove a finding), and the key policy gives the account (root) kms:*, so
    IAM policies decide who may use the key.
    """
    resources = backup_resources(settings)
    return [
        Question(actions, (resources[target],), _BACKUP_CONTEXT, policies.get(target) if is_user else None)
        for target, actions in BACKUP_DESTROYING_ACTIONS.items()
    ]


def destroying_actions(
    allowed_pairs: set[tuple[str, str]], settings: IamReviewSettings
) -> dict[str, list[str]]:
    """Per kind of target, the destroying actions allowed on it (pairs of another target are ignored)."""
    resources = backup_resources(settings)
    found: dict[str, list[str]] = {}
    for target, actions in BACKUP_DESTROYING_ACTIONS.items():
        hits = [a for a in actions if (a, resources[target]) in allowed_pairs]
        if hits:
            found[target] = hits
    return found


def destroyer_findings(
    iam: IAMClient, account: AccountIam, settings: IamReviewSettings, policies: Mapping[str, str | None]
) -> list[Finding]:
    found = []
    for principal in account.principals():
        pairs: set[tuple[str, str]] = set()
        for question in questions(settings, policies, is_user=principal.kind == "user"):
            pairs |= allowed(iam, principal.arn, question)
        by_target = destroying_actions(pairs, settings)
        if principal.kind == "role" and principal.name == settings.prune_role:
            # The prune function deletes AMIs, their snapshots and RDS snapshots by design (the retention
            # policy), only those tagged ManagedBy=schoolbackup (infra/prune.py). Anything else it could
            # destroy is a finding like anyone's.
            by_target = {
                t: rest
                for t, actions in by_target.items()
                if (rest := [a for a in actions if a not in PRUNE_DESTROYS])
            }
        if by_target:
            detail = "can " + "; ".join(
                f"{', '.join(actions)} on {_what(t, settings)}" for t, actions in by_target.items()
            )
            found.append(Finding(CAN_DELETE_BACKUPS, principal.arn, detail))
    return found


def resource_policies(s3: S3Client, kms: KMSClient, settings: IamReviewSettings) -> dict[str, str | None]:
    """The live bucket policy (None: the bucket has none) and key policy, by kind of target."""
    try:
        bucket: str | None = s3.get_bucket_policy(Bucket=settings.bucket)["Policy"]
    except ClientError as err:
        if error_code(err) != "NoSuchBucketPolicy":
            raise
        bucket = None
    key = kms.get_key_policy(KeyId=settings.key_arn, PolicyName="default")["Policy"]
    return {BACKUP_OBJECT: bucket, BACKUP_BUCKET_CONFIG: bucket, BACKUP_KEY: key}


# --- the stack's roles against its template ---------------------------------------------------------


def drift_findings(defined: Mapping[str, DefinedRole], account: AccountIam) -> list[Finding]:
    """An inline policy, an allowed action or a managed policy on a role of the stack that its template
    does not define. (What the template grants and the role lacks is not a risk; resources are not
    compared: a widened Resource shows in CloudFormation's own drift detection.)"""
    found = []
    for name, role in sorted(defined.items()):
        live = account.role(name)
        if live is None:
            continue
        problems = []
        for policy in live.policies:
            if policy.inline:
                actions = live_actions(policy.document or {})
                if policy.name not in role.inline:
                    problems.append(
                        f"inline policy {policy.name} is not defined by the stack (it allows {', '.join(sorted(actions))})"
                    )
                elif extra := sorted(actions - role.inline[policy.name]):
                    problems.append(
                        f"inline policy {policy.name} allows {', '.join(extra)}, which the stack does not grant"
                    )
            elif policy.arn not in role.managed:
                problems.append(
                    f"managed policy {policy.name} ({policy.arn}) is attached but not defined by the stack"
                )
        if problems:
            found.append(
                Finding(
                    STACK_ROLE_DRIFT, live.arn, f"role {role.logical_id} of the stack: " + "; ".join(problems)
                )
            )
    return found


# --- the review ----------------------------------------------------------------------------------------


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    unique = {(f.kind, f.principal, f.detail): f for f in findings}
    return sorted(
        unique.values(), key=lambda f: (SEVERITIES.index(f.severity), KINDS.index(f.kind), f.principal)
    )


@dataclass(frozen=True)
class Clients:
    """One client per service the review reads."""

    iam: IAMClient
    cloudformation: CloudFormationClient
    s3: S3Client
    kms: KMSClient


def review(
    clients: Clients,
    settings: IamReviewSettings,
    now: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Finding], dict[str, int]]:
    """Every finding of the account now, and how many principals were looked at."""
    iam, s3 = clients.iam, clients.s3
    findings: list[Finding] = []
    if not root_has_mfa(iam):
        findings.append(Finding(ROOT_WITHOUT_MFA, root_arn(settings), "the root user has no MFA device"))
    findings += credential_findings(credential_report(iam, sleep), now)
    account = account_iam(iam)
    findings += admin_findings(account)
    findings += destroyer_findings(iam, account, settings, resource_policies(s3, clients.kms, settings))
    pseudo = {
        "AWS::Partition": settings.partition,
        "AWS::Region": settings.region,
        "AWS::AccountId": settings.account,
        "AWS::URLSuffix": "amazonaws.com",
    }
    defined = defined_roles(clients.cloudformation, settings.stack_name, pseudo)
    findings += drift_findings(defined, account)
    checked = {
        "users": len(account.users),
        "roles": sum(1 for _ in account.principals()) - len(account.users),
        "stack_roles": len(defined),
    }
    return _sorted(findings), checked


def new_high(
    findings: Iterable[Mapping[str, Any]], previous: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """High findings (kind and principal) that the previous month's record does not have; all of them on
    the first review."""
    before = {
        (str(f.get("kind")), str(f.get("principal")))
        for f in (previous or {}).get("findings", [])
        if f.get("severity") == HIGH
    }
    seen: list[dict[str, str]] = []
    for f in findings:
        pair = {"kind": str(f["kind"]), "principal": str(f["principal"])}
        if f["severity"] == HIGH and (pair["kind"], pair["principal"]) not in before and pair not in seen:
            seen.append(pair)
    return seen


@dataclass(frozen=True)
class IamReviewResult:
    """The record of this month: written by this run, or found from an earlier run of the month."""

    key: str
    record: dict[str, Any]
    written: bool

    @property
    def counts(self) -> dict[str, int]:
        counts = self.record.get("counts", {})
        return {s: int(counts.get(s, 0)) for s in SEVERITIES}

    @property
    def new_high(self) -> int:
        return len(self.record.get("new_high", []))

    def as_dict(self, bucket: str) -> dict[str, Any]:
        return {**self.record, "record": f"s3://{bucket}/{self.key}", "repeated": not self.written}


def run_iam_review(
    clients: Clients,
    settings: IamReviewSettings,
    when: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> IamReviewResult:
    """The review of the UTC month of ``when``, made and recorded once."""
    _ = settings.account  # a malformed BACKUP_KEY_ARN fails here, before any request, naming the variable
    key, s3 = iam_review_record_key(when), clients.s3
    earlier = read_record(s3, settings.bucket, key)
    if earlier is not None:
        logger.info("the IAM review of this month was done already", extra={"record": key})
        return IamReviewResult(key, earlier, written=False)
    findings, checked = review(clients, settings, when, sleep=sleep)
    previous_key = iam_review_record_key(previous_month(when))
    previous = read_record(s3, settings.bucket, previous_key)
    rows = [f.as_dict() for f in findings]
    record: dict[str, Any] = {
        "version": 1,
        "month": f"{when.astimezone(UTC):%Y-%m}",
        "scheduled_time": f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "generated_at": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "findings": rows,
        "counts": {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES},
        "new_high": new_high(rows, previous),
        "previous": previous_key if previous is not None else None,
        "checked": checked,
    }
    logger.info("IAM review", extra={"counts": record["counts"], "new_high": len(record["new_high"])})
    if not write_record_once(s3, settings.bucket, key, record):  # a run that raced this one wrote first
        raced = read_record(s3, settings.bucket, key)
        return IamReviewResult(key, raced or record, written=False)
    return IamReviewResult(key, record, written=True)
