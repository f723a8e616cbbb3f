"""Reading back the CloudWatch EMF lines that Powertools prints (what CloudWatch would turn into metrics)."""

from __future__ import annotations

import json
from typing import Any


def emf_metrics(stdout: str) -> list[dict[str, Any]]:
    """Every metric printed: {"name", "value", "dimensions"} (dimensions exactly as published)."""
    found: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            dims = {d: blob[d] for group in directive["Dimensions"] for d in group}
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found.append(
                    {
                        "name": metric["Name"],
                        "value": value[0] if isinstance(value, list) else value,
                        "dimensions": dims,
                    }
                )
    return found
