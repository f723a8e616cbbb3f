"""Judging IAM requests: who asks (a principal with its policies), what AWS evaluates, what it decides."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.iam.requests import IamRequest, Value
from tests.iam.simulator import Decision, action_info, global_keys, simulate
from tests.iam.stack import ACCOUNT, PARTITION, REGION, StackModel


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a role session (its identity policies) or an AWS service."""

    label: str  # for messages: "the prune function", "the dump on the server"
    arn: str  # the session ARN, or the service principal name
    identity: tuple[dict[str, Any], ...]
    context: Mapping[str, Value]

    @classmethod
    def role_session(cls, stack: StackModel, role: str, session: str, label: str) -> Principal:
        """A session of ``role`` (a logical id in the stack, or the name of an outside role)."""
        name, account = stack.role_name(role), stack.account
        role_arn = f"arn:{PARTITION}:iam::{account}:role/{name}"
        return cls(
            label=label,
            arn=f"arn:{PARTITION}:sts::{account}:assumed-role/{name}/{session}",
            identity=tuple(stack.identity_policies(role)),
            context={
                "aws:PrincipalArn": role_arn,
                "aws:PrincipalAccount": account,
                "aws:PrincipalType": "AssumedRole",
                "aws:userid": f"AROA{zlib.crc32(name.encode()):012d}:{session}",
                "aws:PrincipalIsAWSService": "false",
                "aws:ViaAWSService": "false",
            },
        )

    @classmethod
    def function(cls, stack: StackModel, handler_module: str) -> Principal:
        """The role of ``lambdas.<name>.handler``."""
        name = handler_module.split(".")[1]
        return cls.role_session(
            stack, stack.function_role(f"{handler_module}.handler"), name, f"the {name} function"
        )

    @classmethod
    def service(cls, service: str, source_arn: str | None, account: str = ACCOUNT) -> Principal:
        """An AWS service acting for ``account`` (``aws:SourceAccount``) and resource ``source_arn``."""
        context: dict[str, Value] = {
            "aws:PrincipalIsAWSService": "true",
            "aws:PrincipalServiceName": service,
            "aws:SourceAccount": account,
        }
        if source_arn:
            context["aws:SourceArn"] = source_arn
        who = "our account" if account == ACCOUNT else f"account {account}"
        return cls(label=f"{service} acting for {who}", arn=service, identity=(), context=context)


@dataclass(frozen=True)
class Verdict:
    stack: StackModel
    principal: Principal
    request: IamRequest
    decision: Decision
    problems: tuple[str, ...]  # evaluator errors, keys the action does not support

    @property
    def allowed(self) -> bool:
        return self.decision.allowed and not self.problems

    def deciders(self) -> list[str]:
        """The statements behind the decision: Sids; ``TLS-only (enforce_ssl)`` for CDK's unnamed TLS
        statement; ``implicit`` when nothing allowed the request."""
        reasons = self.decision.allowed_by if self.decision.allowed else self.decision.denied_by
        names: list[str] = []
        for reason in reasons:
            if reason.get("denialType") == "Implicit":
                continue
            if reason.get("statementId"):
                names.append(str(reason["statementId"]))
                continue
            if reason.get("policyType") == "resource":
                policy = self.stack.resource_policy(self.request.resource) or {"Statement": []}
                statement = policy["Statement"][int(reason["statementIndex"]) - 1]
                if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                    names.append(TLS_ONLY)
                    continue
            where = reason.get("policyIdentifier") or reason.get("policyType")
            names.append(f"{where}#{reason.get('statementIndex')}")
        return names or [IMPLICIT]

    def explain(self) -> str:
        decided = ", ".join(self.deciders())
        text = f"{self.principal.label}: {self.request.describe()} -> {self.decision.result} ({decided})"
        return text + "".join(f"\n    ! {p}" for p in self.problems)


TLS_ONLY = "TLS-only (enforce_ssl)"
IMPLICIT = "implicit"
_BASE_CONTEXT: dict[str, Value] = {"aws:SecureTransport": "true", "aws:RequestedRegion": REGION}
_cache: dict[str, Decision] = {}


# Services whose resources have resource policies (bucket, key, role trust, topic, queue): a request of
# another account's principal needs both its identity policy and the resource policy. The other services
# (EC2, RDS...) have none: a shared snapshot or image is an attribute of the resource (the share, a request
# of its own), and IAM decides on the caller's identity policy alone, as in its own account.
RESOURCE_POLICY_SERVICES = frozenset({"s3", "kms", "sts", "sns", "sqs"})


def _region(stack: StackModel, arn: str) -> str:
    """The region a request on ``arn`` is made in: that of the stack holding it, else the ARN's."""
    if arn == "*":
        return stack.region
    owner = stack.owner(arn)
    if owner is not stack:
        return owner.region
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else stack.region


def resource_account(stack: StackModel, principal: Principal, request: IamRequest) -> str:
    """The account the evaluator takes the resource to be in (same account or cross-account)."""
    caller = str(principal.context.get("aws:PrincipalAccount", stack.account))
    if request.resource == "*" or request.action.split(":", 1)[0] not in RESOURCE_POLICY_SERVICES:
        return caller
    return stack.account_of(request.resource)


def simulation_for(stack: StackModel, principal: Principal, request: IamRequest) -> dict[str, Any]:
    """The evaluator's question. A request for a resource of the offsite (or staging) stack is made in
    that stack's region, other requests in the region of the ARN; a request on a key carries the key's
    aliases (``kms:ResourceAliases``), as AWS adds them. The resource's account is the account of the
    stack holding it (of the ARN): for another account's principal, IAM then requires both the identity
    and the resource policy (see ``RESOURCE_POLICY_SERVICES``)."""
    region = _region(stack, request.resource)
    context = {**_BASE_CONTEXT, "aws:RequestedRegion": region, **principal.context, **request.context}
    aliases = stack.key_aliases(request.resource) if request.action.startswith("kms:") else ()
    if aliases and "kms:resourcealiases" in action_info(request.action).keys_for(None):
        context.setdefault("kms:ResourceAliases", aliases)
    resource_policy = stack.resource_policy(request.resource) if request.resource != "*" else None
    simulation: dict[str, Any] = {
        "request": {
            "principal": principal.arn,
            "action": request.action,
            "resource": {
                "resource": request.resource,
                "accountId": resource_account(stack, principal, request),
            },
            "contextVariables": {k: list(v) if isinstance(v, tuple) else v for k, v in context.items()},
        },
        "identityPolicies": list(principal.identity),
    }
    if resource_policy is not None:
        simulation["resourcePolicy"] = resource_policy
    return simulation


def evaluate(stack: StackModel, principal: Principal, request: IamRequest) -> Verdict:
    simulation = simulation_for(stack, principal, request)
    key = repr(sorted(simulation.items(), key=str))
    decision = _cache.get(key)
    if decision is None:
        decision = _cache[key] = simulate(simulation)
    problems: list[str] = []
    if decision.result == "Error":
        problems.append(f"the evaluator could not run it: {decision.errors}")
    info = action_info(request.action)
    if not info.exists:
        problems.append(f"{request.action} is not an action in the AWS service authorization data")
    elif request.resource != "*" and not info.wildcard_only:
        allowed = info.keys_for(decision.resource_type) | global_keys()
        bad = [k for k in request.context if _key_pattern(k) not in allowed]
        if bad:
            problems.append(
                f"{request.action} does not support the condition keys {bad} (authorization data)"
            )
    if decision.ignored_keys:
        problems.append(f"keys ignored as not applicable: {list(decision.ignored_keys)}")
    return Verdict(stack, principal, request, decision, tuple(problems))


def evaluate_all(stack: StackModel, principal: Principal, requests: Iterable[IamRequest]) -> list[Verdict]:
    return [evaluate(stack, principal, r) for r in requests]


def _key_pattern(key: str) -> str:
    lower = key.lower()
    head, sep, _ = lower.partition("/")
    if sep and not head.startswith("kms:encryptioncontext:"):
        return f"{head}/${{tagkey}}"
    if head.startswith("kms:encryptioncontext:"):
        return "kms:encryptioncontext:${encryptioncontextkey}"
    return lower
