"""Checks before `make demo` and `make deploy`, each failure in one sentence.

``python -m infra.preflight --json-only`` (make demo): cdk.json in the working directory is valid JSON.
``python -m infra.preflight`` (make deploy): that, a real configuration (no example values), AWS
credentials that work (STS, short timeout), the account and region the stack would land in, and a DB
secret in that same account and region. Exit status 1 when anything is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.config import CONTEXT_KEY, ConfigError, load_config

CDK_JSON: Final = "cdk.json"
STS_TIMEOUT_SECONDS: Final = 5


class PreflightError(Exception):
    """One sentence that stops `make`."""


@dataclass(frozen=True)
class Identity:
    account: str
    region: str
    arn: str


def read_context(path: Path) -> Any:
    """The ``schoolbackup`` block of ``path``; a missing file or invalid JSON is one sentence."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PreflightError(f"{path} not found: run make in the schoolbackup directory") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1].strip() if err.lineno <= len(text.splitlines()) else ""
        raise PreflightError(
            f"{path.name} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
            + (f" ({line[:60]})" if line else "")
        ) from None
    if not isinstance(data, dict):
        raise PreflightError(f'{path.name} must hold a JSON object with a "context" block')
    return data.get("context", {}).get(CONTEXT_KEY) if isinstance(data.get("context"), dict) else None


def problems(context: object, identity: Identity | None, credential_problem: str | None = None) -> list[str]:
    """Everything that stops a deploy. ``identity`` is who the credentials are (None: no credentials)."""
    try:
        config = load_config(context)
    except ConfigError as err:
        return [f"cdk.json: {p}" for p in err.problems]
    found = []
    examples = config.example_addresses()
    if examples:
        found.append(
            f"cdk.json still has the example e-mail address(es) {', '.join(examples)}; put in the real admin and "
            "deputy addresses (schoolbackup.notification_emails) before deploying."
        )
    placeholders = config.example_values()
    if placeholders:
        found.append(
            f"cdk.json still has the example value(s) {', '.join(placeholders)}; put in the real database host "
            "and the ARN of the dump user's secret (see README, 'The read-only dump user')."
        )
    if credential_problem:
        found.append(credential_problem)
    elif identity is None:
        found.append(
            "No AWS credentials found: run `aws configure` (or `aws sso login` and set AWS_PROFILE), then "
            "`make deploy` again."
        )
    elif config.offsite.enabled and config.offsite.region == identity.region:
        found.append(
            f"offsite.region is {identity.region}, the region the stack would be deployed to: offsite copies "
            "must go to another region. Change offsite.region in cdk.json, or deploy with the right "
            "AWS_PROFILE/AWS_REGION."
        )
    elif config.offsite.cross_account and identity.account != config.offsite.home_account:
        found.append(
            f"offsite.home_account is {config.offsite.home_account}, but your credentials are for account "
            f"{identity.account}: the stack is deployed to the home account, and the copies go to "
            f"offsite.account ({config.offsite.account}). Deploy with the home account's AWS_PROFILE, or "
            "correct offsite.home_account in cdk.json."
        )
    if identity is not None and config.dump.enabled and not placeholders:
        _, _, _, region, account, *_ = config.dump.db_secret_arn.split(":")
        if (account, region) != (identity.account, identity.region):
            found.append(
                f"dump.db_secret_arn is in account {account}, region {region}, but the stack would be deployed "
                f"to account {identity.account}, region {identity.region}: the server could not read the secret. "
                "Use the secret of this account and region, or deploy with the right AWS_PROFILE/AWS_REGION."
            )
    return found


def who_am_i() -> tuple[Identity | None, str | None]:
    """(identity, None) when the credentials work; (None, a sentence) when they do not."""
    import boto3  # noqa: PLC0415 - only deploy needs it
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # noqa: PLC0415

    session = boto3.Session()
    if session.get_credentials() is None:
        return None, None
    region = os.environ.get("AWS_REGION") or session.region_name  # as the CDK CLI picks it
    if not region:
        return None, (
            "No AWS region set: the stack lands in the region of your AWS profile; set one with "
            "`aws configure set region eu-central-2` or export AWS_REGION, then `make deploy` again."
        )
    timeout = Config(
        connect_timeout=STS_TIMEOUT_SECONDS, read_timeout=STS_TIMEOUT_SECONDS, retries={"max_attempts": 1}
    )
    try:
        answer = session.client("sts", region_name=region, config=timeout).get_caller_identity()
    except NoCredentialsError:
        return None, None
    except ClientError as err:
        error = err.response.get("Error", {})
        return None, (
            f"The AWS credentials do not work ({error.get('Code', 'error')}: {error.get('Message', err)}); "
            "log in again (`aws sso login` or `aws configure`), then `make deploy` again."
        )
    except BotoCoreError as err:
        return None, (
            f"Cannot reach AWS STS in {region} within {STS_TIMEOUT_SECONDS} s ({err}); check the network, "
            "then `make deploy` again."
        )
    return Identity(answer["Account"], region, answer["Arn"]), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__)
    parser.add_argument("--json-only", action="store_true", help="only check that cdk.json is valid JSON")
    args = parser.parse_args(argv)
    path = Path(os.getcwd()) / CDK_JSON
    try:
        context = read_context(path)
    except PreflightError as err:
        print(f"{'demo' if args.json_only else 'deploy'} stopped: {err}", file=sys.stderr)
        return 1
    if args.json_only:
        return 0
    identity, credential_problem = who_am_i()
    found = problems(context, identity, credential_problem)
    for line in found:
        print(f"deploy stopped: {line}", file=sys.stderr)
    if not found and identity is not None:
        print(f"deploying to AWS account {identity.account}, region {identity.region}, as {identity.arn}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
