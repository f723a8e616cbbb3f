"""What the stack writes to the admin follows `language`: the alarm descriptions and the dump's
failure mail come from the catalogue (lambdas/common/messages.py), and every function is told it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.infra.conftest import resources_of, synth
from tests.unit.test_messages import english_words


@pytest.fixture(scope="module")
def german() -> Template:
    return synth(language="de")


def _descriptions(template: Template) -> dict[str, str]:
    return {
        str(r["Properties"]["AlarmName"]): str(r["Properties"]["AlarmDescription"])
        for r in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if "AlarmDescription" in r["Properties"]
    }


def _dump_mail(template: Template) -> str:
    [rule] = [r for r in resources_of(template, "AWS::Events::Rule").values() if "dump-failed" in str(r)]
    target: dict[str, Any] = rule["Properties"]["Targets"][0]
    template_text = target["InputTransformer"]["InputTemplate"]
    return str(json.loads(template_text)) if template_text.startswith('"') else str(template_text)


def test_every_alarm_describes_itself_in_the_configured_language(
    german: Template, template: Template
) -> None:
    english, deutsch = _descriptions(template), _descriptions(german)
    assert english.keys() == deutsch.keys() and len(english) >= 8
    for name, text in deutsch.items():
        assert text != english[name], f"{name}: still English"
        assert english_words(text) == [], f"{name}: {text}"
    assert "Die tägliche Prüfung hat eine fehlende" in deutsch["SchoolBackup-VerificationFailed"]
    assert "/schoolbackup/SchoolBackup/dump" in deutsch["SchoolBackup-dump-backup-age"]


def test_the_dump_failure_mail_is_in_the_configured_language(german: Template, template: Template) -> None:
    assert "did not succeed" in _dump_mail(template)
    mail = _dump_mail(german)
    assert "war nicht erfolgreich" in mail and "<detail-instance-id>" in mail  # EventBridge fills it in
    assert "/schoolbackup/SchoolBackup/dump" in mail
    assert english_words(re.sub(r"<[^>]+>", " ", mail)) == []


def test_every_function_that_writes_for_the_admin_is_told_the_language(german: Template) -> None:
    functions = resources_of(german, "AWS::Lambda::Function").values()
    told = {
        str(f["Properties"]["Handler"]).split(".")[1]
        for f in functions
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("LANGUAGE") == "de"
    }
    assert {"verify", "report"} <= told
