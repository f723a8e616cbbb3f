"""Cold-start import cost of every Lambda handler, as a ratio to a bare ``import boto3``.

Run: ``python tests/bench/cold_start.py [--repeat 7]``. Each measurement is a fresh interpreter
(``python -X importtime`` is not used: it slows imports unevenly), round-robin over baseline and
handlers; the median of the repeats is taken for each, so machine speed cancels out in the ratio.
Handlers are discovered as ``lambdas/*/handler.py``. Tracing stays off, as in a default deployment
(Powertools Tracer, i.e. the X-Ray SDK, is loaded only when tracing is switched on).
Exit status 1 when a handler is above the target ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET_RATIO = 1.5

_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def handler_modules() -> list[str]:
    return sorted(f"lambdas.{p.parent.name}.handler" for p in (REPO / "lambdas").glob("*/handler.py"))


def import_seconds(module: str) -> float:
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "eu-central-2",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "schoolbackup",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def medians(modules: list[str], repeat: int) -> dict[str, float]:
    """Round-robin over the modules in every repeat, so load changes on the machine hit all alike."""
    samples: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeat):
        for module in modules:
            samples[module].append(import_seconds(module))
    return {m: statistics.median(s) for m, s in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh interpreters per module (median taken)")
    args = parser.parse_args()

    modules = handler_modules()
    for module in ["boto3", *modules]:
        import_seconds(module)  # warm the OS file cache once; not counted
    measured = medians(["boto3", *modules], args.repeat)
    baseline = measured["boto3"]
    rows = [(m, measured[m]) for m in modules]

    width = max(len(m) for m in ["import boto3 (baseline)", *modules])
    print(f"{'module':<{width}}  {'median ms':>9}  {'ratio':>6}  target <= {TARGET_RATIO}")
    print(f"{'import boto3 (baseline)':<{width}}  {baseline * 1000:9.1f}  {1.0:6.2f}")
    over = 0
    for module, seconds in rows:
        ratio = seconds / baseline
        flag = "" if ratio <= TARGET_RATIO else "  ABOVE TARGET"
        over += bool(flag)
        print(f"{module:<{width}}  {seconds * 1000:9.1f}  {ratio:6.2f}{flag}")
    print(f"{len(rows)} handlers, {args.repeat} fresh interpreters each, python {sys.version.split()[0]}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
