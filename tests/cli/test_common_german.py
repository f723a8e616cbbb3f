"""backupctl's shared sentences in German (configuration ``language: de``): what AWS (or the lack of it)
says for every command, ``prune --dry-run`` and the ages in tables. English stays the default."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import time_machine
import typer
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from cli.backupctl.context import Aws, Cli, speaks_aws
from cli.backupctl.output import age_text
from lambdas.common.contracts import backup_name, backup_tags
from tests.cli.conftest import Result, School
from tests.unit.test_messages import english_words

NO_CREDENTIALS_DE = (
    "backupctl: Keine AWS-Zugangsdaten gefunden: Melden Sie sich mit `aws sso login` oder `aws configure` "
    "an (oder geben Sie --profile an) und starten Sie backupctl dann erneut."
)


def _said(result: Result) -> str:
    """What backupctl said on stderr, on one line (Rich wraps long sentences)."""
    return " ".join(result.stderr.split())


def test_without_credentials_in_german(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result], german_config: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = cli("--config", str(german_config), "--endpoint-url", "http://127.0.0.1:9", "prune", "--dry-run")
    assert result.exit_code == 1
    assert _said(result) == NO_CREDENTIALS_DE
    assert english_words(_said(result)) == []


def test_without_a_region_in_german(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result], german_config: Path
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = cli("--config", str(german_config), "prune", "--dry-run")
    assert result.exit_code == 2
    assert _said(result) == (
        "backupctl: Es ist keine AWS-Region eingestellt: Geben Sie --region eu-central-2 an oder setzen Sie "
        "die Umgebungsvariable AWS_REGION."
    )
    assert english_words(_said(result)) == []


def test_an_unknown_profile_in_german_and_in_english(cli: Callable[..., Result], german_config: Path) -> None:
    result = cli("--config", str(german_config), "--profile", "nobody", "prune", "--dry-run")
    assert result.exit_code == 2
    assert _said(result) == (
        "backupctl: Es gibt kein AWS-Profil «nobody» (siehe `aws configure list-profiles`)"
    )
    english = cli("--profile", "nobody", "prune", "--dry-run")
    assert _said(english) == (
        "backupctl: There is no AWS profile named 'nobody' (see `aws configure list-profiles`)"
    )


@pytest.mark.parametrize(
    ("error", "german", "english"),
    [
        (NoCredentialsError(), NO_CREDENTIALS_DE, "backupctl: No AWS credentials found: log in with"),
        (
            NoRegionError(),
            "backupctl: Es ist keine AWS-Region eingestellt:",
            "backupctl: No AWS region is set:",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            'backupctl: AWS ist nicht erreichbar (Could not connect to the endpoint URL: "http://127.0.0.1:9"); '
            "prüfen Sie das Netzwerk oder --endpoint-url.",
            "backupctl: Cannot reach AWS (",
        ),
        (
            ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "ListTopics"),
            "backupctl: Die AWS-Zugangsdaten funktionieren nicht (ExpiredToken): Melden Sie sich neu an und "
            "starten Sie backupctl dann erneut.",
            "backupctl: The AWS credentials do not work (ExpiredToken): log in again, then run backupctl again.",
        ),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "ListTopics"),
            "backupctl: AWS hat ListTopics abgelehnt: ",
            "backupctl: AWS refused ListTopics: ",
        ),
        (
            ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
            'backupctl: Der Aufruf an AWS ist fehlgeschlagen: Read timeout on endpoint URL: "http://127.0.0.1:9"',
            "backupctl: AWS call failed: Read timeout",
        ),
    ],
)
def test_what_aws_says_is_one_sentence_in_the_configured_language(
    error: Exception,
    german: str,
    english: str,
    german_config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    @speaks_aws
    def command(ctx: object) -> None:
        raise error

    for config, expected in ((german_config, german), (None, english)):
        with pytest.raises(typer.Exit):
            command(ctx=SimpleNamespace(obj=Cli(Aws(), config)))
        said = " ".join(capsys.readouterr().err.split())
        assert said.startswith(expected), said
    with pytest.raises(typer.Exit):  # no Cli at hand: English
        command(ctx=SimpleNamespace(obj=None))
    assert " ".join(capsys.readouterr().err.split()).startswith(english)


def test_prune_without_dry_run_in_german(cli: Callable[..., Result], german_config: Path) -> None:
    result = cli("--config", str(german_config), "prune")
    assert result.exit_code == 2
    assert _said(result) == (
        "backupctl: backupctl zeigt nur den Plan (prune --dry-run); gelöscht wird vom Job prune (er läuft "
        "täglich, oder sofort mit `backupctl run prune`)."
    )


def test_prune_dry_run_of_an_empty_account_in_german(
    school: School, cli: Callable[..., Result], german_config: Path
) -> None:
    result = cli("--config", str(german_config), "prune", "--dry-run")
    assert result.exit_code == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert shown.startswith(
        "Aufbewahrungsplan (7 tägliche, 4 wöchentliche, 3 monatliche, höchstens 90 Tage alt, immer "
        "mindestens 3 verwendbare)"
    ), shown
    for header in ("Quelle", "Art", "Sicherung", "erstellt (Europe/Zurich)", "Zustand", "Aktion", "Grund"):
        assert header in shown
    assert shown.endswith("0 zu löschen, 0 zu behalten. Es wurde nichts gelöscht.")
    assert english_words(shown) == []


def test_prune_dry_run_in_german_names_the_action(
    school: School, cli: Callable[..., Result], german_config: Path
) -> None:
    rds = boto3.client("rds")
    now = datetime.now(UTC)
    for days in (1, 2, 3, 4, 150):
        when = now - timedelta(days=days)
        with time_machine.travel(when, tick=False):
            rds.create_db_snapshot(
                DBInstanceIdentifier=school.database,
                DBSnapshotIdentifier=backup_name(school.database, when),
                Tags=[{"Key": k, "Value": v} for k, v in backup_tags("rds-daily", school.database).items()],
            )
    result = cli("--config", str(german_config), "prune", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "LÖSCHEN" in result.stdout and "behalten" in result.stdout
    assert "DELETE" not in result.stdout and " keep " not in result.stdout
    assert result.stdout.splitlines()[-1] == "1 zu löschen, 4 zu behalten. Es wurde nichts gelöscht."


def test_ages_in_german() -> None:
    assert (age_text(30, "de"), age_text(100, "de"), age_text(None, "de")) == ("30 h", "4,2 Tage", "-")
    assert age_text(100) == "4.2 days"
