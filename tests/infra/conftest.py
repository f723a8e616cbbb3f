"""Synthesize the stack once per test session with the context from cdk.json (feature flags included)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.config import load_config
from infra.nag import enable_nag
from infra.stack import BackupStack
from tests.iam.stack import context_with, example_settings, merged_settings


def cdk_context() -> dict[str, Any]:
    """cdk.json's context as synth sees it (feature flags and the example configuration)."""
    return context_with(example_settings())


def synth(overrides: dict[str, Any] | None = None, **blocks: Any) -> Template:
    """The stack's template, with cdk-nag active, for the example config updated by ``overrides`` and
    ``blocks`` (``synth(retention={"min_keep": 4})``); nested blocks are merged key by key."""
    settings = merged_settings({**(overrides or {}), **blocks})
    app = cdk.App(context=context_with(settings))
    stack = BackupStack(app, "SchoolBackup", config=load_config(settings))
    enable_nag(app)
    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def template() -> Template:
    return synth()


# Copies into another account: the offsite block of the offsite tests, with a target and a home account.
HOME_ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
OFFSITE_REGION = "eu-central-1"
CROSS_ACCOUNT_OFFSITE: dict[str, Any] = {
    "enabled": True,
    "region": OFFSITE_REGION,
    "kinds": ["dump", "rds", "ami"],
    "account": TARGET_ACCOUNT,
    "home_account": HOME_ACCOUNT,
}


def synth_app(overrides: dict[str, Any] | None = None, **blocks: Any) -> tuple[cdk.App, dict[str, Template]]:
    """Every stack as app.py builds them (the home stack, and with offsite copies the offsite stack and,
    with a target account, the staging stack), with cdk-nag active: the app and the templates by stack
    name (building a template at all proves zero open nag findings in it)."""
    from infra.offsite import add_offsite_stack

    settings = merged_settings({**(overrides or {}), **blocks})
    config = load_config(settings)
    app = cdk.App(context=context_with(settings))
    add_offsite_stack(app, BackupStack(app, "SchoolBackup", config=config), config)
    enable_nag(app)
    stacks = [c for c in app.node.children if isinstance(c, cdk.Stack)]
    return app, {stack.stack_name: Template.from_stack(stack) for stack in stacks}


@pytest.fixture(scope="session")
def cross_account() -> tuple[cdk.App, dict[str, Template]]:
    """The stacks of copies of dumps, RDS snapshots and AMIs into another account."""
    return synth_app(offsite=CROSS_ACCOUNT_OFFSITE)


def resources_of(template: Template, rtype: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(rtype)
    return found


def assert_has_resource(template: Template, rtype: str, properties: dict[str, Any]) -> None:
    """At least one ``rtype`` resource matches ``properties`` (CDK's matcher; raises on mismatch)."""
    template.has_resource_properties(rtype, properties)


def function_logical_id(template: Template, handler: str) -> str:
    """The one function whose handler is ``handler`` (e.g. ``lambdas.prune.handler.handler``)."""
    found = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    assert len(found) == 1, found
    return next(iter(found))


def role_statements(template: Template, handler: str) -> dict[str, dict[str, Any]]:
    """The statements of that function's role, by Sid (by the JSON of the actions where there is none)."""
    function = template.find_resources("AWS::Lambda::Function")[function_logical_id(template, handler)]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    by_sid: dict[str, dict[str, Any]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                by_sid[statement.get("Sid", json.dumps(statement["Action"]))] = statement
    return by_sid
