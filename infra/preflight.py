"""Checks before `make deploy`: a real configuration and AWS credentials, each failure in one sentence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from infra.config import CONTEXT_KEY, ConfigError, load_config

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def problems(context: object, has_credentials: bool) -> list[str]:
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
    if not has_credentials:
        found.append(
            "No AWS credentials found: run `aws configure` (or `aws sso login` and set AWS_PROFILE), then "
            "`make deploy` again."
        )
    return found


def _has_credentials() -> bool:
    import boto3  # noqa: PLC0415 - only deploy needs it

    return boto3.Session().get_credentials() is not None


def main() -> int:
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}).get(CONTEXT_KEY)
    found = problems(context, _has_credentials())
    for line in found:
        print(f"deploy stopped: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
