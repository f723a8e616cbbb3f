"""The restore drill's EventBridge rule: an execution stopped by hand or timed out (it never reaches its
Teardown state) is handed to the drill function at once, and only that rule may invoke it so."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.infra.conftest import function_logical_id, resources_of, synth


def _stopped_rule(template: Template) -> dict[str, Any]:
    [rule] = [
        r["Properties"]
        for r in resources_of(template, "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]
    ]
    return rule


def test_a_stopped_or_timed_out_drill_execution_goes_to_the_drill_function(template: Template) -> None:
    rule = _stopped_rule(template)
    [machine] = resources_of(template, "AWS::StepFunctions::StateMachine")
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["ABORTED", "TIMED_OUT"], "stateMachineArn": [{"Ref": machine}]},
    }
    [target] = rule["Targets"]
    drill = function_logical_id(template, "lambdas.drill.handler.handler")
    assert target["Arn"] == {"Fn::GetAtt": [drill, "Arn"]}
    assert "Input" not in target and "InputTransformer" not in target  # the event itself
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 4}
    # EventBridge may invoke the drill function for this rule only
    [rule_id] = [k for k, r in resources_of(template, "AWS::Events::Rule").items() if r["Properties"] == rule]
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [drill, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        },
    )


def test_without_the_drill_there_is_no_such_rule() -> None:
    template = synth({"restore_drill": {"enabled": False}})
    rules = resources_of(template, "AWS::Events::Rule").values()
    assert not [r for r in rules if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]]
