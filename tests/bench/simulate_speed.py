"""backupctl simulate: days rehearsed per second, and whether a long rehearsal costs more per day.

Run: ``python tests/bench/simulate_speed.py`` (``cli`` imports through the project's editable install).
Rehearses 30 and then 120 days with the shipped cdk.json, side by side in one
process, and prints the seconds per simulated day of each and their ratio. Every day holds the same
runs, so the ratio shows what the growing inventory costs (prune and verify read more each day until
the retention policy and the bucket lifecycle level it off). Exit status 1 when the 120-day rehearsal
costs more than twice as much per day as the 30-day one.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from cli.backupctl.context import read_config
from cli.backupctl.rehearsal import Injection, Rehearsal

REPO = Path(__file__).resolve().parents[2]
TARGET_RATIO = 2.0


def main() -> int:

    config = read_config(REPO / "cdk.json")
    per_day = {}
    for days in (30, 120):
        rehearsal = Rehearsal(config, date(2026, 8, 3), days, [Injection(10, "missed-dump")])
        started = time.perf_counter()
        rehearsal.run()
        seconds = time.perf_counter() - started
        per_day[days] = seconds / days
        print(f"{days:>4} days: {seconds:6.1f} s, {days / seconds:5.2f} days/s, {rehearsal.runs} job runs")
    ratio = per_day[120] / per_day[30]
    print(f"seconds per day, 120-day / 30-day rehearsal: {ratio:.2f}  (target <= {TARGET_RATIO})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
