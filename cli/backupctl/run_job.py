"""``backupctl run <job>``: start a deployed job now and print what it did (the plan's "after updates" check).

A Lambda job is invoked synchronously with ``{}`` (it names what it makes after the current minute); the
dump is sent as a Run Command to the servers its schedule targets and followed to its end.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from cli.backupctl.context import Cli, speaks_aws
from cli.backupctl.errors import PROBLEM, CliError, UsageError
from cli.backupctl.output import JsonFlag, Output
from lambdas.common.aws.errors import error_code
from lambdas.common.aws.selection import selected_servers
from lambdas.common.contracts import SCHEDULED_JOBS
from lambdas.common.messages import say

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

LAMBDA_JOBS: Final = tuple(j for j in SCHEDULED_JOBS if j != "dump")
# Invoke once (a retry would run the job twice) and wait as long as the longest job may run.
INVOKE: Final = BotoConfig(
    retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=16 * 60, tcp_keepalive=True
)
TERMINAL: Final = ("Success", "Failed", "TimedOut", "Cancelled", "Undeliverable", "Terminated")
POLL_SECONDS: Final = 5.0
TAIL_LINES: Final = 5


def _invoke(cli: Cli, job: str, out: Output) -> dict[str, Any]:
    client = cli.aws.session().client(
        "lambda", region_name=cli.aws.region_name, endpoint_url=cli.aws.endpoint_url, config=INVOKE
    )
    name = cli.aws.function_name(job)
    out.line(cli.say("cli.common.run_running", name=name))
    try:
        answer = client.invoke(FunctionName=name, InvocationType="RequestResponse", Payload=b"{}")
    except (ReadTimeoutError, ConnectionClosedError) as err:
        raise CliError(cli.say("cli.common.run_connection_broke", name=name, error=err)) from None
    raw = answer["Payload"].read().decode("utf-8", errors="replace")
    try:
        payload: Any = json.loads(raw) if raw else None
    except ValueError:
        payload = raw
    failed = "FunctionError" in answer
    return {"job": job, "function": name, "ok": not failed, "result": payload}


def dump_document(ssm: SSMClient, stack: str, language: str = "en") -> str:
    """The newest ``<stack>-Dump-<hash>`` document of this account (its name changes with its content)."""
    found: list[tuple[Any, str]] = []
    for page in ssm.get_paginator("list_documents").paginate(Filters=[{"Key": "Owner", "Values": ["Self"]}]):
        for doc in page.get("DocumentIdentifiers", []):
            name = doc.get("Name", "")
            if name.startswith(f"{stack}-Dump-"):
                found.append((doc.get("CreatedDate") or 0, name))
    if not found:
        raise CliError(say("cli.common.run_no_document", language, stack=stack))
    return max(found, key=lambda f: (str(f[0]), f[1]))[1]


def _dump(cli: Cli, out: Output, wait_minutes: int) -> dict[str, Any]:
    ssm, config = cli.aws.ssm(), cli.config
    if not config.dump.enabled:
        raise UsageError(cli.say("cli.common.run_dump_off"))
    document = dump_document(ssm, cli.aws.stack, cli.language)
    selection = config.selection
    targets: dict[str, Any] = (
        {"InstanceIds": list(selection.ec2_instance_ids)}
        if selection.ec2_instance_ids
        else {"Targets": [{"Key": f"tag:{selection.tag.key}", "Values": [selection.tag.value]}]}
    )
    group = f"/schoolbackup/{cli.aws.stack}/dump"
    command = cli.aws.once("ssm").send_command(  # sent once: a retried SendCommand is a second dump
        DocumentName=document,
        DocumentVersion="$LATEST",
        Comment="schoolbackup dump started by backupctl run dump",
        CloudWatchOutputConfig={"CloudWatchLogGroupName": group, "CloudWatchOutputEnabled": True},
        TimeoutSeconds=config.dump.timeout_minutes * 60,
        **targets,
    )["Command"]
    command_id = command["CommandId"]
    out.line(cli.say("cli.common.run_sent", document=document, command=command_id, group=group))
    deadline = time.monotonic() + wait_minutes * 60
    while True:  # the command's overall status (every target done); then each server's output
        found = ssm.list_commands(CommandId=command_id)["Commands"]  # empty for a moment right after sending
        listed = found[0] if found else {}
        if listed.get("Status") in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise CliError(
                cli.say("cli.common.run_still_running", command=command_id, minutes=wait_minutes, group=group)
            )
        time.sleep(POLL_SECONDS)
    servers = selected_servers(cli.aws.ec2(), selection.tag, selection.ec2_instance_ids)
    results = []
    for instance in servers.ids if not selection.ec2_instance_ids else list(selection.ec2_instance_ids):
        try:
            inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        except ClientError as err:
            results.append({"instance": instance, "status": f"not run ({error_code(err)})", "last_lines": []})
            continue
        output = inv.get("StandardOutputContent", "") + inv.get("StandardErrorContent", "")
        results.append(
            {
                "instance": instance,
                "status": inv.get("Status"),
                "last_lines": output.strip().splitlines()[-TAIL_LINES:],
            }
        )
    if listed.get("TargetCount") == 0 or not results:
        raise CliError(cli.say("cli.common.run_no_server", targets=targets, tag=selection.tag))
    ok = listed.get("Status") == "Success" and all(r["status"] == "Success" for r in results)
    return {"job": "dump", "document": document, "command_id": command_id, "ok": ok, "result": results}


def register(app: typer.Typer) -> None:
    @app.command("run")
    @speaks_aws
    def run_command(
        ctx: typer.Context,
        job: Annotated[str, typer.Argument(help="One of: " + ", ".join(SCHEDULED_JOBS))],
        wait_minutes: Annotated[int, typer.Option(help="How long to follow the dump.")] = 180,
        as_json: JsonFlag = False,
    ) -> None:
        """Run a deployed job now, wait for it and print its result; exit 1 if it failed."""
        cli: Cli = ctx.obj
        out = Output(as_json)
        job = job.replace("-", "_")
        if job not in SCHEDULED_JOBS:
            raise UsageError(cli.say("cli.common.run_unknown_job", job=job, jobs=", ".join(SCHEDULED_JOBS)))
        result = _dump(cli, out, wait_minutes) if job == "dump" else _invoke(cli, job, out)
        if as_json:
            out.json(result)
        else:
            out.line(
                json.dumps(result["result"], indent=2, default=str) if result["result"] is not None else ""
            )
            out.line(cli.say("cli.common.run_done" if result["ok"] else "cli.common.run_failed", job=job))
        if not result["ok"]:
            raise typer.Exit(PROBLEM)
