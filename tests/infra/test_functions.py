"""The function factory: runtime, architecture, JSON logs with retention, pinned Powertools layer, own role."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.functions import powertools_version
from lambdas.common.contracts import DRILL_SCHEDULES, OFFSITE_SCHEDULES, SCHEDULED_JOBS, job_resource_name
from lambdas.common.settings import (
    AmiBackupSettings,
    DrillSettings,
    FunctionSettings,
    IamReviewSettings,
    OffsiteCopySettings,
    PruneSettings,
    RdsSnapshotSettings,
    ReportSettings,
    RestoreTestSettings,
    VerifySettings,
)
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
        assert props["Layers"] == [{"Ref": _powertools_parameter(template)}]
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


def _powertools_parameter(template: Template) -> str:
    params = {
        name: p
        for name, p in template.to_json()["Parameters"].items()
        if str(p.get("Default", "")).startswith("/aws/service/powertools/")
    }
    assert len(params) == 1, params
    return next(iter(params))


def test_the_layer_is_the_powertools_version_the_tests_run_with(template: Template) -> None:
    parameter = template.to_json()["Parameters"][_powertools_parameter(template)]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    pinned = powertools_version()
    # requirements.txt pins it, the venv the tests run in has it, the template asks AWS for exactly it
    assert pinned == version("aws-lambda-powertools")
    assert parameter["Default"] == f"/aws/service/powertools/python/arm64/python3.14/{pinned}"


def test_the_pin_is_read_strictly_from_requirements(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("boto3==1.0\naws-lambda-powertools[tracer]==3.37.0  # pinned\n")
    assert powertools_version(good) == "3.37.0"
    for text in (
        "aws-lambda-powertools>=3.0\n",
        "boto3==1.0\n",
        "aws-lambda-powertools==1\naws-lambda-powertools==2\n",
    ):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match="pin aws-lambda-powertools exactly once"):
            powertools_version(bad)


SETTINGS_OF = {
    "ami_backup": AmiBackupSettings,
    "prune": PruneSettings,
    "rds_snapshot": RdsSnapshotSettings,
    "report": ReportSettings,
    "restore_test": RestoreTestSettings,
    "verify": VerifySettings,
    "iam_review": IamReviewSettings,
    "drill": DrillSettings,
    "offsite_copy": OffsiteCopySettings,  # only with offsite copies of rds or ami
}
OFFSITE_ON = {"offsite": {"enabled": True, "region": "eu-central-1", "kinds": ["dump", "rds", "ami"]}}


def _placeholder(value: Any) -> str:
    """A deploy-time value (bucket name, topic ARN) as the string the Lambda will see."""
    return value if isinstance(value, str) else f"deploy-time-{abs(hash(json.dumps(value, sort_keys=True)))}"


@pytest.mark.parametrize(
    "config", [{}, {"selection": {"tag_key": "Sicherung", "tag_value": "ja"}, "language": "de"}, OFFSITE_ON]
)
def test_each_function_gets_exactly_the_environment_its_settings_write(config: dict[str, Any]) -> None:
    """The stack builds each environment with Settings.to_env(): what the Lambda reads back with from_env()
    and writes again is exactly what the stack set, variable for variable (none missing, none extra)."""
    functions = resources_of(synth(config), "AWS::Lambda::Function").values()
    seen = set()
    for fn in functions:
        name = fn["Properties"]["Handler"].split(".")[1]
        variables = {k: _placeholder(v) for k, v in fn["Properties"]["Environment"]["Variables"].items()}
        settings = SETTINGS_OF[name].from_env(variables)
        rebuilt = {**FunctionSettings.from_env(variables).to_env(), **settings.to_env()}
        assert rebuilt == variables, name
        seen.add(name)
    assert seen == set(SETTINGS_OF) - (set() if "offsite" in config else {"offsite_copy"})


def test_the_stack_schedules_exactly_the_jobs_the_contracts_name(template: Template) -> None:
    """backupctl status shows the next run of these (and says the others are not deployed yet)."""
    names = {s["Properties"]["Name"] for s in resources_of(template, "AWS::Scheduler::Schedule").values()}
    assert names == {job_resource_name("SchoolBackup", job) for job in (*SCHEDULED_JOBS, *DRILL_SCHEDULES)}
    functions = {
        f["Properties"]["FunctionName"] for f in resources_of(template, "AWS::Lambda::Function").values()
    }
    lambda_jobs = {job for job in SCHEDULED_JOBS if job != "dump"} | {"drill"}
    assert functions == {job_resource_name("SchoolBackup", job) for job in lambda_jobs}


def test_with_offsite_copies_the_copy_job_is_scheduled_too() -> None:
    template = synth(OFFSITE_ON)
    names = {s["Properties"]["Name"] for s in resources_of(template, "AWS::Scheduler::Schedule").values()}
    jobs = (*SCHEDULED_JOBS, *DRILL_SCHEDULES, *OFFSITE_SCHEDULES)
    assert names == {job_resource_name("SchoolBackup", job) for job in jobs}
    functions = {
        f["Properties"]["FunctionName"] for f in resources_of(template, "AWS::Lambda::Function").values()
    }
    lambda_jobs = {job for job in SCHEDULED_JOBS if job != "dump"} | {"drill", *OFFSITE_SCHEDULES}
    assert functions == {job_resource_name("SchoolBackup", job) for job in lambda_jobs}


def test_without_the_drill_nothing_of_it_is_deployed() -> None:
    template = synth({"restore_drill": {"enabled": False}})
    names = {s["Properties"]["Name"] for s in resources_of(template, "AWS::Scheduler::Schedule").values()}
    assert names == {job_resource_name("SchoolBackup", job) for job in SCHEDULED_JOBS}
    assert resources_of(template, "AWS::StepFunctions::StateMachine") == {}
    assert resources_of(template, "AWS::EC2::VPC") == {}


def test_the_alarms_the_rehearsal_evaluates_are_alarms_of_the_stack(template: Template) -> None:
    """backupctl simulate mirrors these alarms; a renamed or removed alarm must not leave it behind."""
    from cli.backupctl.context import read_config
    from cli.backupctl.rehearsal import evaluated_alarms

    names = {a["Properties"]["AlarmName"] for a in resources_of(template, "AWS::CloudWatch::Alarm").values()}
    assert evaluated_alarms(read_config()) <= names
