"""Print a readable summary of a synthesized schoolbackup template (what `make demo` shows).

Reads the CloudFormation template written by ``cdk synth`` and the configuration from cdk.json, so
it shows what would really be deployed: resources, schedules with their next three runs in the
configured timezone, alarms, and where mails go.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from infra.cron import parse_cron

REPO_ROOT = Path(__file__).resolve().parent.parent


def _text(value: Any) -> str:
    """A template value as text: plain strings as they are, CloudFormation functions as a short hint."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_text(v) for v in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return "<deploy-time value>"


def summarize(template: dict[str, Any], now: datetime) -> str:
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    by_type = Counter(r["Type"] for r in resources.values())
    lines = ["schoolbackup: what `cdk deploy` would create", ""]

    lines.append(f"Resources ({sum(by_type.values())}):")
    for rtype, count in sorted(by_type.items()):
        lines.append(f"  {count:3d}  {rtype}")

    schedules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    lines += ["", f"Schedules ({len(schedules)}):"]
    for props in sorted(schedules, key=lambda p: str(p.get("Name", ""))):
        tz = ZoneInfo(props.get("ScheduleExpressionTimezone", "UTC"))
        expression = props["ScheduleExpression"]
        runs = parse_cron(expression).next_runs(now, 3, tz)
        lines.append(f"  {_text(props.get('Name', '?'))}: {expression} ({tz.key})")
        lines.append("      next: " + ", ".join(r.strftime("%a %Y-%m-%d %H:%M %Z") for r in runs))

    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    lines += ["", f"Alarms ({len(alarms)}), each mails the alarm topic:"]
    for props in sorted(alarms, key=lambda p: _text(p.get("AlarmName", ""))):
        description = str(props.get("AlarmDescription", "")).split(". ")[0]
        lines.append(f"  {_text(props.get('AlarmName', '?'))}: {description}")

    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    if rules:
        lines += ["", "Event rules that mail the alarm topic:"]
        lines += [f"  {p.get('Description', '(no description)')}" for p in rules]

    subscriptions = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"].get("Protocol") == "email"
    ]
    lines += ["", "Mails go to (each address must confirm the AWS subscription mail once):"]
    lines += [f"  {s['Endpoint']}" for s in subscriptions] or ["  (nobody: no e-mail subscription!)"]

    outputs = template.get("Outputs", {})
    if outputs:
        lines += ["", "Outputs after deploy:"]
        lines += [f"  {name}: {o.get('Description', '')}".rstrip(": ") for name, o in sorted(outputs.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="cdk.out/SchoolBackup.template.json")
    args = parser.parse_args(argv)
    if not args.template.is_file():
        print(
            f"summary: {args.template} does not exist; run `make demo` (it synthesizes first)",
            file=sys.stderr,
        )
        return 1
    template = json.loads(args.template.read_text(encoding="utf-8"))
    print(summarize(template, datetime.now(UTC)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
