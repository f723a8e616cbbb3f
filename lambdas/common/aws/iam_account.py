"""The account's IAM as data: the credential report, every user, group and role with its policies, and
AWS's own evaluation of what a principal may do (``iam:SimulatePrincipalPolicy``).

Policy documents come back URL-encoded JSON from IAM; botocore decodes most of them, this module takes
either form. Service-linked roles (path ``/aws-service-role/``) belong to AWS services, cannot be changed
by the account and are left out.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from botocore.exceptions import ClientError

from lambdas.common.aws.errors import error_code
from lambdas.common.contracts import parse_time

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import ContextEntryTypeDef

SERVICE_LINKED_PATH: Final = "/aws-service-role/"
ROOT_ROW: Final = "<root_account>"
ADMINISTRATOR_ACCESS: Final = "AdministratorAccess"  # the AWS managed policy that allows * on *
REPORT_ATTEMPTS: Final = 5
REPORT_WAIT_SECONDS: Final = 2.0  # between attempts: IAM builds a report in seconds
# Errors GetCredentialReport answers while the report is being made (or is stale and must be made again).
_NOT_READY: Final = ("ReportInProgress", "ReportNotPresent", "ReportExpired", "ReportNotReady")


class IamReadError(RuntimeError):
    """IAM could not give what the review needs (its message names what and what to do)."""


# --- the credential report --------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessKey:
    number: int  # 1 or 2, as the credential report numbers them
    last_rotated: datetime | None
    last_used: datetime | None


@dataclass(frozen=True)
class CredentialRow:
    """One line of the credential report: a user, or the root user (``user == "<root_account>"``)."""

    user: str
    arn: str
    created: datetime | None
    password_enabled: bool
    mfa_active: bool
    keys: tuple[AccessKey, ...]  # the active ones only

    @property
    def is_root(self) -> bool:
        return self.user == ROOT_ROW


def _date(raw: str | None) -> datetime | None:
    """A credential report date; ``N/A``, ``no_information``, ``not_supported`` and empty are None."""
    text = (raw or "").strip()
    if not text or not text[0].isdigit():
        return None
    return parse_time(text)


def parse_credential_report(content: bytes | str) -> list[CredentialRow]:
    """The rows of the CSV credential report (AWS's documented columns)."""
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    rows = []
    for line in csv.DictReader(io.StringIO(text)):
        keys = tuple(
            AccessKey(
                n,
                _date(line.get(f"access_key_{n}_last_rotated")),
                _date(line.get(f"access_key_{n}_last_used_date")),
            )
            for n in (1, 2)
            if line.get(f"access_key_{n}_active", "").lower() == "true"
        )
        rows.append(
            CredentialRow(
                user=line["user"],
                arn=line["arn"],
                created=_date(line.get("user_creation_time")),
                password_enabled=line.get("password_enabled", "").lower() == "true",
                mfa_active=line.get("mfa_active", "").lower() == "true",
                keys=keys,
            )
        )
    return rows


def credential_report(iam: IAMClient, sleep: Callable[[float], None] = time.sleep) -> list[CredentialRow]:
    """Ask IAM for a fresh credential report and read it; a few short waits while IAM makes it, then a
    clear failure (the Lambda's error alarm) instead of waiting for the timeout."""
    for attempt in range(1, REPORT_ATTEMPTS + 1):
        state = iam.generate_credential_report().get("State")
        if state == "COMPLETE":
            try:
                return parse_credential_report(iam.get_credential_report()["Content"])
            except ClientError as err:
                if error_code(err) not in _NOT_READY:
                    raise
        if attempt < REPORT_ATTEMPTS:
            sleep(REPORT_WAIT_SECONDS)
    waited = REPORT_WAIT_SECONDS * (REPORT_ATTEMPTS - 1)
    raise IamReadError(
        f"The IAM credential report was still not ready after {REPORT_ATTEMPTS} attempts over {waited:.0f} "
        "seconds (iam:GenerateCredentialReport); run the review again in a few minutes."
    )


def root_has_mfa(iam: IAMClient) -> bool:
    """``AccountMFAEnabled`` of the account summary: whether the root user has an MFA device."""
    return int(iam.get_account_summary()["SummaryMap"].get("AccountMFAEnabled", 0)) == 1


# --- users, groups, roles and their policies --------------------------------------------------------


def policy_document(raw: Any) -> dict[str, Any]:
    """A policy document as IAM returns it (a dict, or URL-encoded JSON text) as a dict."""
    if isinstance(raw, Mapping):
        return dict(raw)
    text = str(raw)
    try:
        found: dict[str, Any] = json.loads(unquote(text) if text.lstrip().startswith("%") else text)
    except ValueError:
        found = json.loads(unquote(text))
    return found


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = document.get("Statement", [])
    return [dict(s) for s in (raw if isinstance(raw, list) else [raw]) if isinstance(s, Mapping)]


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@dataclass(frozen=True)
class Policy:
    """A policy as attached to a principal: inline (``arn`` empty) or managed."""

    name: str
    arn: str = ""
    document: Mapping[str, Any] | None = None  # None: an AWS managed policy (not read; known by its name)

    @property
    def inline(self) -> bool:
        return not self.arn

    def allows_everything(self) -> bool:
        """AdministratorAccess, or a statement that allows ``"Action": "*"`` on ``"Resource": "*"``."""
        if self.arn.endswith(f":policy/{ADMINISTRATOR_ACCESS}") and ":iam::aws:" in self.arn:
            return True
        return any(
            s.get("Effect") == "Allow"
            and "*" in as_list(s.get("Action"))
            and "*" in as_list(s.get("Resource"))
            for s in statements(self.document or {})
        )


@dataclass(frozen=True)
class IamPrincipal:
    """A user or role with every policy that applies to it (a user's groups' policies named by group)."""

    kind: str  # user | role
    name: str
    arn: str
    path: str
    policies: tuple[Policy, ...] = ()
    groups: tuple[str, ...] = ()  # a user's groups
    group_policies: tuple[tuple[str, Policy], ...] = ()  # (group, policy)

    @property
    def service_linked(self) -> bool:
        return self.kind == "role" and self.path.startswith(SERVICE_LINKED_PATH)


@dataclass
class AccountIam:
    users: list[IamPrincipal] = field(default_factory=list)
    roles: list[IamPrincipal] = field(default_factory=list)

    def principals(self) -> Iterator[IamPrincipal]:
        """Every user and role the account controls (service-linked roles left out)."""
        yield from self.users
        yield from (r for r in self.roles if not r.service_linked)

    def role(self, name: str) -> IamPrincipal | None:
        return next((r for r in self.roles if r.name == name), None)


def _managed(
    attached: Iterable[Mapping[str, Any]], documents: Mapping[str, Mapping[str, Any]]
) -> list[Policy]:
    return [
        Policy(str(a["PolicyName"]), str(a["PolicyArn"]), documents.get(str(a["PolicyArn"])))
        for a in attached
    ]


def _inline(listed: Iterable[Mapping[str, Any]]) -> list[Policy]:
    return [Policy(str(p["PolicyName"]), "", policy_document(p["PolicyDocument"])) for p in listed]


def account_iam(iam: IAMClient) -> AccountIam:
    """Every user, group and role with its inline and managed policies (one paginated
    iam:GetAccountAuthorizationDetails). Customer managed policies come with their default version;
    AWS managed policies are known by their name (AdministratorAccess is the one that allows * on *)."""
    users: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    roles: list[dict[str, Any]] = []
    documents: dict[str, Mapping[str, Any]] = {}
    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Role", "Group", "LocalManagedPolicy"]
    )
    for page in pages:
        users += [dict(u) for u in page.get("UserDetailList", [])]
        groups.update({str(g["GroupName"]): dict(g) for g in page.get("GroupDetailList", [])})
        roles += [dict(r) for r in page.get("RoleDetailList", [])]
        for policy in page.get("Policies", []):
            for version in policy.get("PolicyVersionList", []):
                if version.get("IsDefaultVersion"):
                    documents[str(policy["Arn"])] = policy_document(version.get("Document", {}))
    found = AccountIam()
    for user in users:
        member_of = tuple(str(g) for g in user.get("GroupList", []))
        group_policies = tuple(
            (g, p)
            for g in member_of
            if g in groups
            for p in (
                *_inline(groups[g].get("GroupPolicyList", [])),
                *_managed(groups[g].get("AttachedManagedPolicies", []), documents),
            )
        )
        found.users.append(
            IamPrincipal(
                "user",
                str(user["UserName"]),
                str(user["Arn"]),
                str(user.get("Path", "/")),
                (
                    *_inline(user.get("UserPolicyList", [])),
                    *_managed(user.get("AttachedManagedPolicies", []), documents),
                ),
                member_of,
                group_policies,
            )
        )
    for role in roles:
        found.roles.append(
            IamPrincipal(
                "role",
                str(role["RoleName"]),
                str(role["Arn"]),
                str(role.get("Path", "/")),
                (
                    *_inline(role.get("RolePolicyList", [])),
                    *_managed(role.get("AttachedManagedPolicies", []), documents),
                ),
            )
        )
    return found


# --- what AWS says a principal may do ---------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """Which of ``actions`` may the principal do on ``resources`` (each action on each resource)?"""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    context: Mapping[str, str] = field(default_factory=dict)  # request context (tags of the resource, TLS)
    resource_policy: str | None = None  # the resource's own policy (JSON), e.g. the bucket policy


def allowed(iam: IAMClient, principal_arn: str, question: Question) -> set[tuple[str, str]]:
    """The (action, resource) pairs AWS's policy simulator allows for the principal: its identity policies,
    its groups', its permissions boundary, and ``question.resource_policy`` (paginated)."""
    entries: list[ContextEntryTypeDef] = [
        {
            "ContextKeyName": key,
            "ContextKeyValues": [value],
            "ContextKeyType": "boolean" if value in ("true", "false") else "string",
        }
        for key, value in question.context.items()
    ]
    params: dict[str, Any] = {
        "PolicySourceArn": principal_arn,
        "ActionNames": list(question.actions),
        "ResourceArns": list(question.resources),
        "ContextEntries": entries,
    }
    if question.resource_policy is not None:
        params["ResourcePolicy"] = question.resource_policy
    found: set[tuple[str, str]] = set()
    for page in iam.get_paginator("simulate_principal_policy").paginate(**params):
        for result in page.get("EvaluationResults", []):
            action = str(result["EvalActionName"])
            per_resource = result.get("ResourceSpecificResults") or []
            if per_resource:  # one decision per resource of the question
                found |= {
                    (action, str(r["EvalResourceName"]))
                    for r in per_resource
                    if r.get("EvalResourceDecision") == "allowed"
                }
            elif result.get("EvalDecision") == "allowed":
                found.add((action, str(result.get("EvalResourceName", "*"))))
    return found
