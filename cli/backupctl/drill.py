"""``backupctl drill start|status``: start the restore drill now, or show the running and the last one.

``start`` starts an execution of the deployed state machine (``<stack>-restore-drill``) with the current
minute as its scheduled time, unless one is running already (two drills would share their resources).
``status`` shows a running execution and the newest record ``reports/drills/<slot>.json``: when, result,
the achieved recovery time against the target, every phase, what was not deleted. Exit 1 when the last
drill failed, took longer than the target or left resources behind.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from botocore.exceptions import ClientError

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import PROBLEM, CliError
from cli.backupctl.output import JsonFlag, Output
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.records import newest_record as stored_newest_record
from lambdas.common.contracts import DRILL_PREFIX, job_resource_name, parse_time


def machine_arn(cli: Cli) -> str:
    aws = cli.aws
    name = job_resource_name(aws.stack, "restore-drill")
    return f"arn:aws:states:{aws.region_name}:{aws.account}:stateMachine:{name}"


def running(cli: Cli) -> list[dict[str, Any]]:
    sfn = cli.aws.client("stepfunctions")
    try:
        found = sfn.list_executions(stateMachineArn=machine_arn(cli), statusFilter="RUNNING")
    except ClientError as err:
        if error_code(err) == "StateMachineDoesNotExist":
            raise CliError(cli.say("cli.drill.no_machine", stack=cli.aws.stack)) from None
        raise
    executions: list[dict[str, Any]] = found.get("executions", [])
    return executions


def newest_record(cli: Cli) -> dict[str, Any] | None:
    found = stored_newest_record(cli.aws.s3(), cli.aws.bucket, DRILL_PREFIX)
    if found is None:
        return None
    key, record = found
    return {**record, "record": f"s3://{cli.aws.bucket}/{key}"}


def needs_attention(record: dict[str, Any] | None) -> bool:
    if record is None:
        return False
    return (
        record.get("result") != "passed" or not record.get("rto_met", False) or bool(record.get("leftovers"))
    )


def _local(cli: Cli, raw: str | None) -> str:
    if not raw:
        return "-"
    return f"{parse_time(raw).astimezone(cli.config.zone):%d.%m.%Y %H:%M}"


def show(cli: Cli, executions: list[dict[str, Any]], record: dict[str, Any] | None, out: Output) -> None:
    for execution in executions:
        out.line(
            cli.say(
                "cli.drill.running",
                when=_local(cli, execution["startDate"].astimezone(UTC).isoformat()),
                execution=execution["name"],
            )
        )
    if record is None:
        out.line(cli.say("cli.drill.none"))
        return
    rto = record.get("rto_minutes")
    result = cli.say("cli.drill.passed" if record.get("result") == "passed" else "cli.drill.failed")
    out.line(
        cli.say(
            "cli.drill.last",
            when=_local(cli, record.get("started_at")),
            result=result,
            rto=cli.say("cli.drill.minutes", n=rto) if rto is not None else cli.say("cli.drill.no_rto"),
            target=record.get("rto_target_minutes", "?"),
        ),
        style="bold green" if not needs_attention(record) else "bold red",
    )
    rows = [
        [
            str(p.get("name")),
            cli.say("mail.ok") if p.get("ok") else cli.say("mail.problem"),
            str(p.get("seconds", 0)),
            str(p.get("detail", ""))[:120],
        ]
        for p in record.get("phases", [])
    ]
    out.table(record.get("record", ""), ["phase", "", "s", ""], rows)
    if record.get("leftovers"):
        out.line(cli.say("cli.drill.leftovers", ids=", ".join(record["leftovers"])), style="bold red")


def register(app: typer.Typer) -> None:
    drill = typer.Typer(
        help="The twice-yearly restore drill: start it now, or see the last one.", no_args_is_help=True
    )

    @drill.command("start")
    @speaks_aws
    def drill_start(ctx: typer.Context, as_json: JsonFlag = False) -> None:
        """Start the restore drill now (it restores the newest checked backups into isolation)."""
        cli: Cli = ctx.obj
        out = Output(as_json)
        already = running(cli)
        if already:
            raise CliError(cli.say("cli.drill.already_running", execution=already[0]["name"]), PROBLEM)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        started = cli.aws.client("stepfunctions").start_execution(
            stateMachineArn=machine_arn(cli),
            name=f"backupctl-{now:%Y%m%dT%H%MZ}",
            input=json.dumps({"scheduled_time": f"{now:%Y-%m-%dT%H:%M:%SZ}"}),
        )
        if as_json:
            out.json({"execution": started["executionArn"], "scheduled_time": f"{now:%Y-%m-%dT%H:%M:%SZ}"})
            return
        minutes = cli.config.restore_drill.rto_target_minutes
        out.line(cli.say("cli.drill.started", execution=started["executionArn"], minutes=minutes))

    @drill.command("status")
    @speaks_aws
    def drill_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
        """The running drill (if any) and the last one: result, recovery time, phases, leftovers."""
        cli: Cli = ctx.obj
        out = Output(as_json)
        executions = running(cli)
        record = newest_record(cli)
        if as_json:
            out.json({"running": [e["executionArn"] for e in executions], "last": record})
        else:
            show(cli, executions, record, out)
        if needs_attention(record):
            raise typer.Exit(PROBLEM)

    app.add_typer(drill, name="drill")
