"""``backupctl iam-review``: run the deployed monthly IAM review now (it returns this month's record when
the month was reviewed already), or with ``--last`` show the newest record in the bucket.

Each finding with its kind, principal and what to do, in the configured language (the record's details
are English data: shown in English only). Exit 0 without high findings, 1 with high findings (or when the
review failed or there is none), 2 on bad usage.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import PROBLEM, CliError
from cli.backupctl.output import JsonFlag, Output
from cli.backupctl.run_job import _invoke
from lambdas.common.aws.records import newest_record as stored_newest_record
from lambdas.common.contracts import IAM_REVIEW_PREFIX

JOB = "iam_review"


def newest_record(cli: Cli) -> dict[str, Any]:
    bucket = cli.aws.bucket
    found = stored_newest_record(cli.aws.s3(), bucket, IAM_REVIEW_PREFIX)
    if found is None:
        raise CliError(cli.say("cli.iam.none_yet", bucket=bucket))
    key, record = found
    return {**record, "record": f"s3://{bucket}/{key}", "repeated": True}


def run_review(cli: Cli, out: Output) -> dict[str, Any]:
    answer = _invoke(cli, JOB, out)
    result = answer["result"]
    if not answer["ok"] or not isinstance(result, dict) or "findings" not in result:
        error = result.get("errorMessage", result) if isinstance(result, dict) else result
        raise CliError(cli.say("cli.iam.failed", error=error))
    return result


def show(cli: Cli, record: dict[str, Any], out: Output, *, ran: bool) -> None:
    lang = cli.language
    out.line(cli.say("cli.iam.title", month=record.get("month", "?"), when=record.get("generated_at", "?")))
    if ran and record.get("repeated"):
        out.line(cli.say("cli.iam.repeated"))
    findings = record.get("findings", [])
    if not findings:
        out.line(cli.say("cli.iam.no_findings"), style="bold green")
        return
    for f in findings:
        kind, principal = str(f.get("kind")), str(f.get("principal", "")).split(":", 5)[-1]
        severity = cli.say(f"iam.severity.{f.get('severity')}")
        out.line(f"[{severity}] {cli.say('iam.line', kind=cli.say(f'iam.kind.{kind}'), principal=principal)}")
        if lang == "en":
            out.line(f"    {f.get('detail', '')}")
        out.line(f"    {cli.say('mail.what_to_do')}: {cli.say(f'iam.todo.{kind}')}")
    high = sum(1 for f in findings if f.get("severity") == "high")
    if high:
        out.line(cli.say("cli.iam.high", n=high), style="bold red")


def register(app: typer.Typer) -> None:
    @app.command("iam-review")
    @speaks_aws
    def iam_review(
        ctx: typer.Context,
        last: Annotated[
            bool, typer.Option("--last", help="Show the newest recorded review; run nothing.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """The monthly IAM review: MFA, old and unused keys, admin access, who can delete backups, drift."""
        cli: Cli = ctx.obj
        out = Output(as_json)
        record = newest_record(cli) if last else run_review(cli, out)
        if as_json:
            out.json(record)
        else:
            show(cli, record, out, ran=not last)
        if any(f.get("severity") == "high" for f in record.get("findings", [])):
            raise typer.Exit(PROBLEM)
