"""EventBridge Scheduler cron expressions: validation and the next run times.

The AWS form has six fields, ``cron(minutes hours day-of-month month day-of-week year)``, one of
day-of-month and day-of-week must be ``?``, day-of-week counts SUN=1..SAT=7, and ``L``, ``W`` and
``#`` are allowed where AWS allows them. Only the standard library is used, so the CLI and the
demo read schedules exactly as synth validated them.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_WRAPPED = re.compile(r"^cron\((?P<body>.*)\)$")
UTC = ZoneInfo("UTC")


class CronError(ValueError):
    """The expression is not a valid EventBridge cron expression."""


@dataclass(frozen=True)
class _DaySpec:
    any: bool = False
    values: frozenset[int] = frozenset()
    last: bool = False  # L (last day of month) or nL (last weekday n of month)
    last_weekday_of_month: int | None = None  # day-of-week "5L"
    nearest_weekday: int | None = None  # day-of-month "15W"
    nth: tuple[int, int] | None = None  # day-of-week "6#3" -> (6, 3)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int] | None  # None = every year
    dom: _DaySpec
    dow: _DaySpec

    def runs_on(self, day: date) -> bool:
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        if self.dom.any:
            return _dow_matches(self.dow, day)
        return _dom_matches(self.dom, day)

    def next_runs(self, after: datetime, count: int, tz: ZoneInfo) -> list[datetime]:
        """The next ``count`` run times strictly after ``after``, as aware datetimes in ``tz``."""
        runs: list[datetime] = []
        local_after = after.astimezone(tz)
        day = local_after.date()
        for _ in range(366 * 30):
            if self.runs_on(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        run = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                        if run > local_after:
                            runs.append(run)
                            if len(runs) == count:
                                return runs
            day += timedelta(days=1)
        return runs


def _dom_matches(spec: _DaySpec, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if spec.last:
        return day.day == last
    if spec.nearest_weekday is not None:
        target = date(day.year, day.month, min(spec.nearest_weekday, last))
        if target.weekday() == 5:  # Saturday -> Friday, unless that leaves the month
            target = target - timedelta(days=1) if target.day > 1 else target + timedelta(days=2)
        elif target.weekday() == 6:  # Sunday -> Monday, unless that leaves the month
            target = target + timedelta(days=1) if target.day < last else target - timedelta(days=2)
        return day == target
    return day.day in spec.values


def _aws_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7 + 1  # Monday=0 -> 2, Sunday=6 -> 1


def _dow_matches(spec: _DaySpec, day: date) -> bool:
    weekday = _aws_weekday(day)
    if spec.nth is not None:
        want, nth = spec.nth
        return weekday == want and (day.day - 1) // 7 + 1 == nth
    if spec.last_weekday_of_month is not None:
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday == spec.last_weekday_of_month and day.day > last - 7
    if spec.last:
        return weekday == 7
    return weekday in spec.values


def _number(token: str, names: dict[str, int], field: str) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise CronError(f"{field}: {token!r} is not a number{' or name' if names else ''}")
    return int(token)


def _parse_set(
    text: str, field: str, low: int, high: int, names: dict[str, int] | None = None
) -> frozenset[int]:
    names = names or {}
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field}: empty list item in {text!r}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, second = base.partition("-")
            start, end = _number(first, names, field), _number(second, names, field)
        else:
            start = _number(base, names, field)
            end = high if step_text else start
        for bound in (start, end):
            if not low <= bound <= high:
                raise CronError(f"{field}: {bound} is outside {low}-{high}")
        if start > end:
            raise CronError(f"{field}: range {base!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _parse_dom(text: str) -> _DaySpec:
    if text == "?":
        return _DaySpec(any=True)
    if text == "L":
        return _DaySpec(last=True)
    if text.endswith("W"):
        day = text[:-1]
        if not day.isdigit() or not 1 <= int(day) <= 31:
            raise CronError(f"day-of-month: {text!r} needs a day 1-31 before W")
        return _DaySpec(nearest_weekday=int(day))
    return _DaySpec(values=_parse_set(text, "day-of-month", 1, 31))


def _parse_dow(text: str) -> _DaySpec:
    if text == "?":
        return _DaySpec(any=True)
    if text == "L":
        return _DaySpec(last=True)
    if "#" in text:
        day, _, nth = text.partition("#")
        want = _number(day, _DAYS, "day-of-week")
        if not 1 <= want <= 7 or not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise CronError(f"day-of-week: {text!r} must look like SAT#1 (day 1-7, occurrence 1-5)")
        return _DaySpec(nth=(want, int(nth)))
    if text.endswith("L") and len(text) > 1:
        want = _number(text[:-1], _DAYS, "day-of-week")
        if not 1 <= want <= 7:
            raise CronError(f"day-of-week: {text!r} needs a day 1-7 before L")
        return _DaySpec(last_weekday_of_month=want)
    return _DaySpec(values=_parse_set(text, "day-of-week", 1, 7, _DAYS))


def parse_cron(expression: str) -> Cron:
    """Parse ``cron(m h dom mon dow year)``; raises CronError saying what is wrong."""
    if not isinstance(expression, str):
        raise CronError("must be a string like cron(0 2 * * ? *)")
    wrapped = _WRAPPED.match(expression.strip())
    if not wrapped:
        raise CronError("must be written as cron(minutes hours day-of-month month day-of-week year)")
    fields = wrapped["body"].split()
    if len(fields) != 6:
        raise CronError(
            f"has {len(fields)} fields; EventBridge cron needs 6 (minutes hours dom month dow year)"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise CronError("exactly one of day-of-month and day-of-week must be '?'")
    return Cron(
        expression=expression.strip(),
        minutes=_parse_set(minute, "minutes", 0, 59),
        hours=_parse_set(hour, "hours", 0, 23),
        months=_parse_set(month, "month", 1, 12, _MONTHS),
        years=None if year == "*" else _parse_set(year, "year", 1970, 2199),
        dom=_parse_dom(dom),
        dow=_parse_dow(dow),
    )


@dataclass(frozen=True)
class ClockChange:
    """A day on which a run time of a schedule does not exist (``gap``: clocks go forward, the
    Scheduler skips the run) or exists twice (``fold``: clocks go back)."""

    kind: str  # "gap" | "fold"
    day: date
    run_time: str  # HH:MM local
    window: str  # the local times that are skipped or repeated, e.g. "02:00-02:59"


def _local_kind(day: date, hour: int, minute: int, tz: ZoneInfo) -> str | None:
    wall = datetime(day.year, day.month, day.day, hour, minute)
    first = wall.replace(tzinfo=tz)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return "gap"
    if first.utcoffset() != first.replace(fold=1).utcoffset():
        return "fold"
    return None


def _window(day: date, kind: str, tz: ZoneInfo) -> str:
    minutes = [(h, m) for h in range(24) for m in range(60) if _local_kind(day, h, m, tz) == kind]
    (h0, m0), (h1, m1) = minutes[0], minutes[-1]
    return f"{h0:02d}:{m0:02d}-{h1:02d}:{m1:02d}"


@functools.cache
def _transition_days(start: date, days: int, tz: ZoneInfo) -> list[date]:
    """Days on which the UTC offset of ``tz`` changes (noon to noon), with the day before."""
    found: set[date] = set()
    previous = datetime(start.year, start.month, start.day, 12, tzinfo=tz).utcoffset()
    for offset in range(1, days + 1):
        day = start + timedelta(days=offset)
        current = datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset()
        if current != previous:
            found.update({day - timedelta(days=1), day})
        previous = current
    return sorted(found)


def clock_changes(cron: Cron, tz: ZoneInfo, start: date, years: int = 4) -> list[ClockChange]:
    """Every run of ``cron`` in the next ``years`` that falls in a DST gap or fold of ``tz``."""
    found = []
    for day in _transition_days(start, 366 * years, tz):
        if not cron.runs_on(day):
            continue
        for hour in sorted(cron.hours):
            for minute in sorted(cron.minutes):
                kind = _local_kind(day, hour, minute, tz)
                if kind:
                    found.append(ClockChange(kind, day, f"{hour:02d}:{minute:02d}", _window(day, kind, tz)))
    return found
