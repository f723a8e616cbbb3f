"""The function factory: runtime, architecture, JSON logs with retention, pinned Powertools layer, own role."""

from __future__ import annotations

from aws_cdk.assertions import Template

from infra.functions import POWERTOOLS_LAYER_NAME, POWERTOOLS_LAYER_VERSION
from tests.infra.conftest import resources_of, synth


def test_every_function_uses_the_factory_defaults(template: Template) -> None:
    functions = resources_of(template, "AWS::Lambda::Function")
    assert functions
    roles = set()
    for fn in functions.values():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["Handler"].startswith("lambdas.") and props["Handler"].endswith(".handler.handler")
        layer = props["Layers"][0]["Fn::Join"][1]
        assert f":017000801446:layer:{POWERTOOLS_LAYER_NAME}:{POWERTOOLS_LAYER_VERSION}" in "".join(
            p for p in layer if isinstance(p, str)
        )
        assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "schoolbackup"
        assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
        roles.add(props["Role"]["Fn::GetAtt"][0])
    assert len(roles) == len(functions), "each function needs its own role"


def test_log_groups_keep_logs_for_the_configured_days(template: Template) -> None:
    groups = resources_of(template, "AWS::Logs::LogGroup")
    assert groups
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {90}
    assert {
        g["Properties"]["RetentionInDays"]
        for g in resources_of(synth({"log_retention_days": 14}), "AWS::Logs::LogGroup").values()
    } == {14}


def test_tracing_switch_turns_on_active_tracing_and_powertools_tracer() -> None:
    traced = synth({"tracing": True})
    for fn in resources_of(traced, "AWS::Lambda::Function").values():
        assert fn["Properties"]["TracingConfig"] == {"Mode": "Active"}
        assert fn["Properties"]["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "false"
