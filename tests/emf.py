"""Reading back the CloudWatch EMF lines that Powertools prints (what CloudWatch would turn into metrics)."""

from __future__ import annotations

from typing import Any

from lambdas.common.publishing import read_emf


def emf_metrics(stdout: str) -> list[dict[str, Any]]:
    """Every metric printed: {"name", "value", "dimensions"} (dimensions exactly as published)."""
    return [{k: m[k] for k in ("name", "value", "dimensions")} for m in read_emf(stdout)]
