"""What the deployed stack says its IAM roles may do: from its template (as CloudFormation processed it)
and its resources (the physical role names).

Per role of the stack: its inline policies by name with the actions each allows (the role's own
``Policies`` and every ``AWS::IAM::Policy`` attached to it) and its managed policy ARNs
(``ManagedPolicyArns`` and ``AWS::IAM::ManagedPolicy`` resources attached to it). Intrinsics are
resolved as far as names need them (``Ref`` to the stack's resources and pseudo parameters,
``Fn::Join``, ``Fn::Sub``); what cannot be resolved stays as its JSON text, so it matches nothing live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdas.common.aws.iam_account import as_list, statements

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


class TemplateError(RuntimeError):
    """The stack's template could not be read as JSON (its message names the stack)."""


@dataclass
class DefinedRole:
    logical_id: str
    name: str  # physical name
    inline: dict[str, set[str]] = field(default_factory=dict)  # policy name -> allowed actions (lower case)
    managed: set[str] = field(default_factory=set)  # policy ARNs


@dataclass(frozen=True)
class _Resolver:
    physical: Mapping[str, str]  # logical id -> physical id
    pseudo: Mapping[str, str]  # AWS::Partition, AWS::Region, AWS::AccountId, AWS::StackName

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping) and len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref" and isinstance(arg, str):
                found = self.pseudo.get(arg) or self.physical.get(arg)
                if found is not None:
                    return found
            if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
                return str(arg[0]).join(self(v) for v in arg[1])
            if fn == "Fn::Sub" and isinstance(arg, str):
                return re.sub(r"\$\{([^}.]+)\}", lambda m: self({"Ref": m[1]}), arg)
        return json.dumps(value, sort_keys=True)


def _template(cloudformation: CloudFormationClient, stack: str) -> dict[str, Any]:
    body: Any = cloudformation.get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"]
    if isinstance(body, Mapping):
        return dict(body)
    try:
        parsed = json.loads(str(body))
    except ValueError:
        raise TemplateError(
            f"The template of stack {stack} is not JSON (YAML?); schoolbackup deploys JSON, so the stack "
            "may have been replaced by hand."
        ) from None
    if not isinstance(parsed, dict):
        raise TemplateError(f"The template of stack {stack} is not a JSON object")
    return parsed


def _actions(document: Any, resolve: _Resolver) -> set[str]:
    if not isinstance(document, Mapping):
        return set()
    found: set[str] = set()
    for s in statements(document):
        if s.get("Effect") != "Allow":
            continue
        raw = s.get("Action")
        found |= {resolve(a).lower() for a in (raw if isinstance(raw, list) else [raw]) if a is not None}
    return found


def defined_roles(
    cloudformation: CloudFormationClient, stack: str, pseudo: Mapping[str, str]
) -> dict[str, DefinedRole]:
    """The stack's roles by physical name, with what its template grants them."""
    template = _template(cloudformation, stack)
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    physical = {
        str(r["LogicalResourceId"]): str(r.get("PhysicalResourceId", ""))
        for page in pages
        for r in page.get("StackResourceSummaries", [])
        if r.get("PhysicalResourceId")
    }
    resolve = _Resolver(physical, {**pseudo, "AWS::StackName": stack})
    resources: Mapping[str, Any] = template.get("Resources", {})
    roles: dict[str, DefinedRole] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::IAM::Role" or logical_id not in physical:
            continue
        props = resource.get("Properties", {})
        role = DefinedRole(logical_id, physical[logical_id])
        for policy in props.get("Policies", []) or []:
            role.inline[resolve(policy.get("PolicyName"))] = _actions(policy.get("PolicyDocument"), resolve)
        role.managed |= {resolve(arn) for arn in props.get("ManagedPolicyArns", []) or []}
        roles[logical_id] = role
    for logical_id, resource in resources.items():
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        for ref in props.get("Roles", []) or []:
            target = ref.get("Ref") if isinstance(ref, Mapping) else None
            if target not in roles:
                continue  # a role outside the stack (the web server's) or by name: not the stack's role
            if kind == "AWS::IAM::Policy":
                name = resolve(props.get("PolicyName"))
                roles[target].inline.setdefault(name, set()).update(
                    _actions(props.get("PolicyDocument"), resolve)
                )
            elif logical_id in physical:
                roles[target].managed.add(physical[logical_id])  # a managed policy's physical id is its ARN
    return {role.name: role for role in roles.values()}


def live_actions(document: Mapping[str, Any]) -> set[str]:
    """The actions a live policy document allows (lower case), NotAction statements as ``notaction:<...>``."""
    found: set[str] = set()
    for s in statements(document):
        if s.get("Effect") != "Allow":
            continue
        found |= {a.lower() for a in as_list(s.get("Action"))}
        found |= {f"notaction:{a.lower()}" for a in as_list(s.get("NotAction"))}
    return found
