"""The synthesized template as IAM sees it: policies per principal, resource policies per resource.

CloudFormation intrinsics are resolved for the stack's account and region (moto's default account and
the example configuration's region; with copies into another account, the configured home and target
accounts and the offsite region), with deterministic stand-ins for the names CloudFormation would
generate. An intrinsic or resource type this module does not know raises instead of being guessed.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

ACCOUNT: Final = "123456789012"
OTHER_ACCOUNT: Final = "210987654321"
REGION: Final = "eu-central-2"
PARTITION: Final = "aws"
STACK_NAME: Final = "SchoolBackup"
CDK_JSON: Final = Path(__file__).resolve().parents[2] / "cdk.json"

_PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK_NAME,
    "AWS::NoValue": None,
}
# Explicit name property per type; without it CloudFormation generates one (we use a stand-in).
_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SSM::Document": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::Policy": "PolicyName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
}
# Resources whose Ref is an id AWS assigns: a deterministic stand-in of the right shape.
_ID_PREFIX = {"AWS::EC2::VPC": "vpc", "AWS::EC2::Subnet": "subnet", "AWS::EC2::SecurityGroup": "sg"}


class UnknownIntrinsic(ValueError):
    """The template uses something the resolver does not model; extend it, never guess."""


def context_with(settings: Mapping[str, Any]) -> dict[str, Any]:
    """cdk.json's context with the schoolbackup block replaced by ``settings``."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    context["schoolbackup"] = copy.deepcopy(dict(settings))
    return context


def example_settings() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]["schoolbackup"]
    return settings


def merged_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The example settings with ``overrides`` merged in (nested blocks key by key)."""
    settings = copy.deepcopy(example_settings())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key].update(value)
        else:
            settings[key] = value
    return settings


def synth_stacks(overrides: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The CloudFormation template of every stack (by stack name) for the example config plus
    ``overrides``, built as app.py builds them (no cdk-nag: it only validates, the templates are the
    same): the home stack and, with offsite copies, the offsite stack and, with a target account, the
    staging stack."""
    import aws_cdk as cdk

    from infra.config import load_config
    from infra.offsite import add_offsite_stack
    from infra.stack import BackupStack

    settings = merged_settings(overrides or {})
    config = load_config(settings)
    app = cdk.App(context=context_with(settings))
    add_offsite_stack(app, BackupStack(app, STACK_NAME, config=config), config)
    assembly = app.synth()
    return {artifact.stack_name: artifact.template for artifact in assembly.stacks}


def synth_templates(
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The CloudFormation templates of the stack and, with offsite copies, of its offsite stack, for the
    example config plus ``overrides``."""
    from lambdas.common.contracts import offsite_stack_name

    stacks = synth_stacks(overrides)
    return stacks[STACK_NAME], stacks.get(offsite_stack_name(STACK_NAME))


def synth_template(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation template of the (home) stack for the example config plus ``overrides``."""
    return synth_templates(overrides)[0]


@cache
def _cached(key: str) -> StackModel:
    from lambdas.common.contracts import offsite_stack_name, staging_stack_name

    overrides = json.loads(key)
    stacks = synth_stacks(overrides)
    offsite = stacks.get(offsite_stack_name(STACK_NAME))
    if offsite is None:
        return StackModel(stacks[STACK_NAME])
    settings = merged_settings(overrides)["offsite"]
    region, target = settings["region"], settings.get("account")
    home = settings.get("home_account") if target else None
    other = StackModel(
        offsite, region=region, stack_name=offsite_stack_name(STACK_NAME), account=target or ACCOUNT
    )
    staging_template = stacks.get(staging_stack_name(STACK_NAME))
    staging = (
        StackModel(
            staging_template,
            region=region,
            stack_name=staging_stack_name(STACK_NAME),
            account=home or ACCOUNT,
        )
        if staging_template is not None
        else None
    )
    return StackModel(stacks[STACK_NAME], offsite=other, staging=staging, account=home or ACCOUNT)


def stack_for(overrides: Mapping[str, Any] | None = None) -> StackModel:
    """One synth per distinct configuration per test process (with offsite copies, the home stack's
    model holds the offsite stack's as ``offsite``)."""
    return _cached(json.dumps(overrides or {}, sort_keys=True))


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: Mapping[str, Any]


class StackModel:
    """Resolved names, ARNs and policies of one synthesized template, in ``region`` of ``account`` (the
    home stack's model also answers for its offsite and staging stacks' resources: ``resource_policy``,
    ``owner``, ``account_of``)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        region: str = REGION,
        stack_name: str = STACK_NAME,
        offsite: StackModel | None = None,
        account: str = ACCOUNT,
        staging: StackModel | None = None,
    ) -> None:
        self.template = template
        self.region, self.stack_name, self.account = region, stack_name, account
        self.offsite = offsite  # the offsite stack's model (its own region; with a target account, there)
        self.staging = staging  # copies into another account: the home account's stack in the offsite region
        self.resources = {
            lid: Resource(lid, r["Type"], r.get("Properties", {})) for lid, r in template["Resources"].items()
        }
        self.parameters = template.get("Parameters", {})
        self._names: dict[str, str] = {}

    def name(self, logical_id: str) -> str:
        """The physical name: the explicit one, else a deterministic stand-in for CloudFormation's."""
        if logical_id in self._names:
            return self._names[logical_id]
        res = self.resources[logical_id]
        prop = _NAME_PROPERTY.get(res.type)
        explicit = res.properties.get(prop) if prop else None
        if explicit is not None:
            value = str(self.resolve(explicit))
        elif res.type == "AWS::S3::Bucket":
            value = f"schoolbackup-{logical_id.lower()}"[:63]
        else:
            value = f"{self.stack_name}-{logical_id}"[:64]
        self._names[logical_id] = value
        return value

    def ref(self, name: str) -> Any:
        if name in _PSEUDO:
            own = {
                "AWS::Region": self.region,
                "AWS::StackName": self.stack_name,
                "AWS::AccountId": self.account,
            }
            return own.get(name, _PSEUDO[name])
        if name in self.parameters:
            param = self.parameters[name]
            if "AWS::SSM::Parameter::Value" in param.get("Type", ""):
                return f"resolved-from-ssm:{param.get('Default')}"
            return param.get("Default")
        res = self.resources.get(name)
        if res is None:
            raise UnknownIntrinsic(f"Ref to unknown {name!r}")
        t = res.type
        if t == "AWS::KMS::Key":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_name}/{name}"))
        if t == "AWS::SNS::Topic":
            return self.get_att(name, "TopicArn")
        if t == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.name(name)}"
        if t == "AWS::StepFunctions::StateMachine":  # its Ref is its ARN
            return self.get_att(name, "Arn")
        if t in _ID_PREFIX:
            return f"{_ID_PREFIX[t]}-{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.stack_name}/{name}').hex[:17]}"
        if t == "AWS::RDS::DBSubnetGroup":
            return self.name(name).lower()  # RDS keeps subnet group names in lower case
        if t in _NAME_PROPERTY:
            return self.name(name)
        raise UnknownIntrinsic(f"Ref to {t} ({name}) is not modelled")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        res = self.resources.get(logical_id)
        if res is None:
            raise UnknownIntrinsic(f"Fn::GetAtt of unknown {logical_id!r}")
        t, n = res.type, self.name(logical_id) if res.type in _NAME_PROPERTY else None
        arns = {
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:{PARTITION}:s3:::{n}",
            ("AWS::IAM::Role", "Arn"): lambda: f"arn:{PARTITION}:iam::{self.account}:role/{n}",
            ("AWS::KMS::Key", "Arn"): lambda: (
                f"arn:{PARTITION}:kms:{self.region}:{self.account}:key/{self.ref(logical_id)}"
            ),
            ("AWS::SNS::Topic", "TopicArn"): lambda: f"arn:{PARTITION}:sns:{self.region}:{self.account}:{n}",
            ("AWS::SNS::Topic", "TopicName"): lambda: n,
            ("AWS::SQS::Queue", "Arn"): lambda: f"arn:{PARTITION}:sqs:{self.region}:{self.account}:{n}",
            ("AWS::SQS::Queue", "QueueName"): lambda: n,
            ("AWS::Lambda::Function", "Arn"): lambda: (
                f"arn:{PARTITION}:lambda:{self.region}:{self.account}:function:{n}"
            ),
            ("AWS::Logs::LogGroup", "Arn"): lambda: (
                f"arn:{PARTITION}:logs:{self.region}:{self.account}:log-group:{n}:*"
            ),
            ("AWS::CloudWatch::Alarm", "Arn"): lambda: (
                f"arn:{PARTITION}:cloudwatch:{self.region}:{self.account}:alarm:{n}"
            ),
            ("AWS::Events::Rule", "Arn"): lambda: (
                f"arn:{PARTITION}:events:{self.region}:{self.account}:rule/{n}"
            ),
            ("AWS::StepFunctions::StateMachine", "Arn"): lambda: (
                f"arn:{PARTITION}:states:{self.region}:{self.account}:stateMachine:{n}"
            ),
            ("AWS::Scheduler::Schedule", "Arn"): lambda: (
                f"arn:{PARTITION}:scheduler:{self.region}:{self.account}:schedule/default/{n}"
            ),
        }
        if (t, attribute) in (("AWS::EC2::SecurityGroup", "GroupId"), ("AWS::EC2::VPC", "VpcId")):
            return self.ref(logical_id)
        build = arns.get((t, attribute))
        if build is None:
            raise UnknownIntrinsic(f"Fn::GetAtt {logical_id}.{attribute} ({t}) is not modelled")
        return build()

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its value in this account and region."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if fn == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self.resolve(p)) for p in self.resolve(parts))
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if fn == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if fn == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(
                        self.resolve(variables[m[1]])
                        if m[1] in variables
                        else self.get_att(*m[1].split(".", 1))
                        if "." in m[1]
                        else self.ref(m[1])
                    ),
                    text,
                )
            if fn.startswith("Fn::"):
                raise UnknownIntrinsic(f"{fn} is not modelled")
        return {k: self.resolve(v) for k, v in value.items()}

    def of_type(self, rtype: str) -> Iterator[Resource]:
        return (r for r in self.resources.values() if r.type == rtype)

    def one(self, rtype: str, **match: Any) -> Resource:
        found = [r for r in self.of_type(rtype) if all(r.properties.get(k) == v for k, v in match.items())]
        if len(found) != 1:
            raise LookupError(f"expected one {rtype} with {match}, found {[r.logical_id for r in found]}")
        return found[0]

    def function_role(self, handler: str) -> str:
        """Logical id of the role of the function whose handler is ``handler``."""
        fn = self.one("AWS::Lambda::Function", Handler=handler)
        role: str = fn.properties["Role"]["Fn::GetAtt"][0]
        return role

    def function_environment(self, handler: str) -> dict[str, str]:
        """The resolved environment variables of the function whose handler is ``handler``."""
        fn = self.one("AWS::Lambda::Function", Handler=handler)
        env = fn.properties.get("Environment", {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in env.items()}

    def instance_profile_role(self, profile: str) -> str:
        """The ARN of the role in the instance profile named ``profile``."""
        for res in self.of_type("AWS::IAM::InstanceProfile"):
            if self.ref(res.logical_id) == profile:
                (role,) = res.properties["Roles"]
                return f"arn:{PARTITION}:iam::{self.account}:role/{self.resolve(role)}"
        raise LookupError(f"no instance profile {profile!r} in the stack")

    def function_log_group(self, handler: str) -> str:
        fn = self.one("AWS::Lambda::Function", Handler=handler)
        return str(self.resolve(fn.properties["LoggingConfig"]["LogGroup"]))

    def identity_policies(self, role: str) -> list[dict[str, Any]]:
        """Resolved policy documents attached to a role: a logical id, or the name of a role outside the
        stack (the web server's) that the stack attaches policies to."""
        docs: list[dict[str, Any]] = []
        in_stack = role in self.resources
        if in_stack:
            props = self.resources[role].properties
            if props.get("ManagedPolicyArns"):
                raise UnknownIntrinsic(
                    f"{role} has managed policies {props['ManagedPolicyArns']}; not modelled"
                )
            docs += [
                {"name": p["PolicyName"], "policy": self.resolve(p["PolicyDocument"])}
                for p in props.get("Policies", [])
            ]
        for policy in self.of_type("AWS::IAM::Policy"):
            roles = policy.properties.get("Roles", [])
            if (in_stack and {"Ref": role} in roles) or (not in_stack and role in roles):
                docs.append(
                    {"name": policy.logical_id, "policy": self.resolve(policy.properties["PolicyDocument"])}
                )
        return docs

    def role_name(self, role: str) -> str:
        return self.name(role) if role in self.resources else role

    def trust_policy(self, role: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.resolve(self.resources[role].properties["AssumeRolePolicyDocument"])
        return doc

    def resource_policy(self, arn: str) -> dict[str, Any] | None:
        """The bucket, key, topic, queue or role-trust policy that governs ``arn`` (None: no such policy)."""
        for res in self.of_type("AWS::S3::BucketPolicy"):
            bucket_arn = f"arn:{PARTITION}:s3:::{self.resolve(res.properties['Bucket'])}"
            if arn == bucket_arn or arn.startswith(bucket_arn + "/"):
                return self._doc(res.properties["PolicyDocument"])
        for res in self.of_type("AWS::KMS::Key"):
            if arn == self.get_att(res.logical_id, "Arn"):
                return self._doc(res.properties["KeyPolicy"])
        for res in self.of_type("AWS::SNS::TopicPolicy"):
            if arn in self.resolve(res.properties["Topics"]):
                return self._doc(res.properties["PolicyDocument"])
        for res in self.of_type("AWS::SQS::QueuePolicy"):
            urls = self.resolve(res.properties["Queues"])
            for q in self.of_type("AWS::SQS::Queue"):
                if self.ref(q.logical_id) in urls and arn == self.get_att(q.logical_id, "Arn"):
                    return self._doc(res.properties["PolicyDocument"])
        for res in self.of_type("AWS::IAM::Role"):
            if arn == self.get_att(res.logical_id, "Arn"):
                return self.trust_policy(res.logical_id)
        for peer in self.peers:
            policy = peer.resource_policy(arn)
            if policy is not None:
                return policy
        return None

    @property
    def peers(self) -> tuple[StackModel, ...]:
        """The other stacks' models this one answers for (offsite, then staging)."""
        return tuple(m for m in (self.offsite, self.staging) if m is not None)

    def owner(self, arn: str) -> StackModel:
        """The model whose template holds ``arn`` (its region is the request's): the offsite stack's
        for the copy bucket, the offsite key (and, in a target account, its roles), the staging stack's
        for the staging key, else this one."""
        for peer in self.peers:
            if peer.holds(arn) or peer.holds_role(arn):
                return peer
        return self

    def account_of(self, arn: str) -> str:
        """The account that owns ``arn``: the account of the stack that holds it, else the account in
        the ARN, else this stack's (S3 buckets and EC2 images name none)."""
        owner = self.owner(arn)
        if owner is not self or self.holds(arn) or self.holds_role(arn):
            return owner.account
        parts = arn.split(":")
        return parts[4] if len(parts) > 5 and parts[4] else self.account

    def holds_role(self, arn: str) -> bool:
        return any(arn == self.get_att(r.logical_id, "Arn") for r in self.of_type("AWS::IAM::Role"))

    def holds(self, arn: str) -> bool:
        """``arn`` is a bucket (or object), key or topic of this template."""
        for res in self.of_type("AWS::S3::Bucket"):
            bucket_arn = self.get_att(res.logical_id, "Arn")
            if arn == bucket_arn or arn.startswith(bucket_arn + "/"):
                return True
        return any(
            arn == self.get_att(r.logical_id, "Arn") for r in self.of_type("AWS::KMS::Key")
        ) or arn in {self.ref(r.logical_id) for r in self.of_type("AWS::SNS::Topic")}

    def key_aliases(self, arn: str) -> tuple[str, ...]:
        """The aliases of the key ``arn`` (what AWS puts in ``kms:ResourceAliases``)."""
        model = self.owner(arn)
        return tuple(
            str(a.properties["AliasName"])
            for a in model.of_type("AWS::KMS::Alias")
            if model.resolve(a.properties["TargetKeyId"]) in (arn, arn.rsplit("/", 1)[-1])
        )

    def _doc(self, doc: Any) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolve(doc)
        return resolved

    @property
    def backup_bucket(self) -> str:
        return self.name(self._bucket_with_lock().logical_id)

    def _bucket_with_lock(self) -> Resource:
        return next(r for r in self.of_type("AWS::S3::Bucket") if r.properties.get("ObjectLockEnabled"))

    @property
    def copy_bucket(self) -> str:
        """The offsite copy bucket's name (offsite copies on)."""
        if self.offsite is None:
            raise LookupError("this stack has no offsite copies")
        return self.offsite.backup_bucket

    @property
    def offsite_key_arn(self) -> str:
        """The offsite key's ARN, in the offsite region (offsite copies on)."""
        if self.offsite is None:
            raise LookupError("this stack has no offsite copies")
        return self.offsite.key_arn

    @property
    def staging_key_arn(self) -> str:
        """The staging key's ARN, in the home account's offsite region (copies into another account)."""
        if self.staging is None:
            raise LookupError(
                "this stack has no staging stack (no copies of rds or ami into another account)"
            )
        return self.staging.key_arn

    @property
    def key_arn(self) -> str:
        return str(self.get_att(self.one("AWS::KMS::Key").logical_id, "Arn"))

    @property
    def topic_arn(self) -> str:
        return str(self.ref(self.one("AWS::SNS::Topic").logical_id))

    @property
    def queue_arn(self) -> str:
        return str(self.get_att(self.one("AWS::SQS::Queue").logical_id, "Arn"))
