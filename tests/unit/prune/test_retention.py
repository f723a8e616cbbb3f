"""The retention policy: restic-forget semantics by example, and its safety properties with hypothesis."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.common.retention import (
    Backup,
    Decision,
    RetentionPolicy,
    State,
    apply_policy,
    week_bucket,
)

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
DEFAULT = RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=3, max_age_days=90, min_keep=3)


def b(
    id_: str,
    created: datetime | None,
    state: State = State.USABLE,
    source: str = "db-1",
    kind: str = "rds",
) -> Backup:
    return Backup(id=id_, source=source, kind=kind, created=created, state=state)


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.backup.id: d for d in decisions}


def kept_ids(decisions: list[Decision]) -> set[str]:
    return {d.backup.id for d in decisions if d.keep}


def test_two_backups_on_one_day_keeps_only_the_newest_for_the_daily_rule() -> None:
    policy = RetentionPolicy(keep_daily=1, keep_weekly=0, keep_monthly=0, max_age_days=90, min_keep=0)
    early = b("early", datetime(2026, 11, 26, 3, 30, tzinfo=UTC))
    late = b("late", datetime(2026, 11, 26, 22, 0, tzinfo=UTC))
    decisions = by_id(apply_policy([early, late], policy, NOW))
    assert decisions["late"].keep
    assert decisions["late"].reason == "daily 2026-11-26"
    assert not decisions["early"].keep
    assert decisions["early"].reason == "not kept by any rule"


def test_days_without_backups_do_not_count_towards_keep_daily() -> None:
    policy = RetentionPolicy(keep_daily=3, keep_weekly=0, keep_monthly=0, max_age_days=365, min_keep=0)
    # Backups on Nov 20, Nov 10, Nov 1 and Oct 1: big gaps, but the "last 3 days that have a backup"
    # are Nov 20, Nov 10 and Nov 1, however far back.
    days = [datetime(2026, 11, 20, 3, tzinfo=UTC), datetime(2026, 11, 10, 3, tzinfo=UTC)]
    days += [datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 10, 1, 3, tzinfo=UTC)]
    backups = [b(f"s{i}", d) for i, d in enumerate(days)]
    decisions = by_id(apply_policy(backups, policy, NOW))
    assert kept_ids(list(decisions.values())) == {"s0", "s1", "s2"}
    assert decisions["s2"].reason == "daily 2026-11-01"


def test_weekly_rule_uses_iso_weeks_and_keeps_the_newest_of_each_week() -> None:
    policy = RetentionPolicy(keep_daily=0, keep_weekly=2, keep_monthly=0, max_age_days=365, min_keep=0)
    # 2026-11-23 is a Monday (W48); 2026-11-22 a Sunday (W47); 2026-01-01 is in ISO week 2026-W01,
    # 2025-12-29 too (ISO year differs from calendar year).
    mon = b("mon", datetime(2026, 11, 23, 3, tzinfo=UTC))
    wed = b("wed", datetime(2026, 11, 25, 3, tzinfo=UTC))
    sun = b("sun", datetime(2026, 11, 22, 3, tzinfo=UTC))
    sat = b("sat", datetime(2026, 11, 21, 3, tzinfo=UTC))
    decisions = by_id(apply_policy([mon, wed, sun, sat], policy, NOW))
    assert kept_ids(list(decisions.values())) == {"wed", "sun"}
    assert decisions["wed"].reason == "weekly 2026-W48"
    assert decisions["sun"].reason == "weekly 2026-W47"
    assert week_bucket(datetime(2025, 12, 29, tzinfo=UTC)) == "2026-W01"


def test_monthly_rule_keeps_newest_of_each_calendar_month() -> None:
    policy = RetentionPolicy(keep_daily=0, keep_weekly=0, keep_monthly=2, max_age_days=365, min_keep=0)
    backups = [
        b("nov-27", datetime(2026, 11, 27, 3, tzinfo=UTC)),
        b("nov-01", datetime(2026, 11, 1, 3, tzinfo=UTC)),
        b("oct-31", datetime(2026, 10, 31, 23, 59, tzinfo=UTC)),
        b("oct-02", datetime(2026, 10, 2, 3, tzinfo=UTC)),
        b("sep-30", datetime(2026, 9, 30, 3, tzinfo=UTC)),
    ]
    decisions = by_id(apply_policy(backups, policy, NOW))
    assert kept_ids(list(decisions.values())) == {"nov-27", "oct-31"}
    assert decisions["oct-31"].reason == "monthly 2026-10"


def test_buckets_are_utc_days_not_local_days() -> None:
    policy = RetentionPolicy(keep_daily=2, keep_weekly=0, keep_monthly=0, max_age_days=90, min_keep=0)
    # 00:30 on Nov 26 in Zurich (UTC+1) is Nov 25 23:30 UTC: same UTC day as 10:00 UTC on Nov 25.
    local = b("local", datetime(2026, 11, 26, 0, 30, tzinfo=ZoneInfo("Europe/Zurich")))
    utc_morning = b("morning", datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    older = b("older", datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    decisions = by_id(apply_policy([local, utc_morning, older], policy, NOW))
    assert decisions["local"].reason == "daily 2026-11-25"
    assert kept_ids(list(decisions.values())) == {"local", "older"}


def test_a_backup_kept_by_several_rules_names_all_of_them() -> None:
    decisions = by_id(apply_policy([b("only", datetime(2026, 11, 27, 3, tzinfo=UTC))], DEFAULT, NOW))
    assert decisions["only"].reasons == (
        "daily 2026-11-27",
        "weekly 2026-W48",
        "monthly 2026-11",
        "min_keep (newest 3 usable)",
    )


def test_anything_older_than_max_age_goes_even_when_a_rule_keeps_it() -> None:
    policy = RetentionPolicy(keep_daily=0, keep_weekly=0, keep_monthly=12, max_age_days=90, min_keep=1)
    newest = b("newest", NOW - timedelta(days=1))
    old = b("old", NOW - timedelta(days=91))  # newest of its month, but too old
    decisions = by_id(apply_policy([newest, old], policy, NOW))
    assert not decisions["old"].keep
    assert decisions["old"].reason == "older than 90 days"


def test_prune_keeps_newest_three_even_when_older_than_90_days() -> None:
    stopped = [b(f"s{i}", NOW - timedelta(days=200 + i)) for i in range(6)]
    decisions = by_id(apply_policy(stopped, DEFAULT, NOW))
    assert kept_ids(list(decisions.values())) == {"s0", "s1", "s2"}
    assert decisions["s0"].reason == "min_keep (newest 3 usable)"
    assert decisions["s3"].reason == "older than 90 days"


def test_failed_backups_do_not_fill_buckets_nor_count_for_min_keep() -> None:
    policy = RetentionPolicy(keep_daily=1, keep_weekly=0, keep_monthly=0, max_age_days=90, min_keep=1)
    good = b("good", datetime(2026, 11, 26, 3, tzinfo=UTC))
    failed_later = b("failed", datetime(2026, 11, 26, 4, tzinfo=UTC), State.FAILED)
    older_good = b("older-good", datetime(2026, 11, 20, 3, tzinfo=UTC))
    decisions = by_id(apply_policy([good, failed_later, older_good], policy, NOW))
    assert decisions["good"].reasons == ("daily 2026-11-26", "min_keep (newest 1 usable)")
    assert decisions["failed"].keep
    assert decisions["failed"].reason == "failed: newest failure kept as evidence"
    assert not decisions["older-good"].keep


def test_failed_backups_superseded_by_a_newer_good_one_or_a_newer_failure_are_deleted() -> None:
    backups = [
        b("good", NOW - timedelta(days=1)),
        b("f-before-good", NOW - timedelta(days=2), State.FAILED),
        b("f-old", NOW - timedelta(days=3), State.FAILED),
        b("g2", NOW - timedelta(days=4)),
        b("g3", NOW - timedelta(days=5)),
    ]
    decisions = by_id(apply_policy(backups, DEFAULT, NOW))
    assert decisions["f-before-good"].reason == "failed, a newer usable backup exists"
    assert decisions["f-old"].reason == "failed, a newer failed backup exists"
    assert not decisions["f-before-good"].keep
    assert not decisions["f-old"].keep


def test_a_streak_of_failures_keeps_only_the_newest_failure_and_the_last_good_backups() -> None:
    good = [b(f"good-{i}", NOW - timedelta(days=30 + i)) for i in range(5)]
    failures = [b(f"fail-{i}", NOW - timedelta(days=i), State.FAILED) for i in range(29)]
    decisions = apply_policy([*good, *failures], DEFAULT, NOW)
    assert kept_ids(decisions) == {"fail-0", "good-0", "good-1", "good-2", "good-3", "good-4"}


def test_pending_is_never_deleted_and_may_lack_a_creation_time() -> None:
    ancient = b("ancient", NOW - timedelta(days=1000), State.PENDING)
    unknown = b("unknown", None, State.PENDING)
    decisions = by_id(apply_policy([ancient, unknown], DEFAULT, NOW))
    assert decisions["ancient"].keep
    assert decisions["unknown"].keep
    assert decisions["unknown"].reason == "pending: never deleted"


def test_groups_are_independent_per_source_and_kind() -> None:
    policy = RetentionPolicy(keep_daily=1, keep_weekly=0, keep_monthly=0, max_age_days=90, min_keep=0)
    when = datetime(2026, 11, 26, 3, tzinfo=UTC)
    backups = [
        b("a-rds", when, source="a", kind="rds"),
        b("a-ami", when - timedelta(hours=1), source="a", kind="ami"),
        b("b-rds", when - timedelta(hours=2), source="b", kind="rds"),
    ]
    assert kept_ids(apply_policy(backups, policy, NOW)) == {"a-rds", "a-ami", "b-rds"}


def test_same_creation_time_is_broken_by_id() -> None:
    policy = RetentionPolicy(keep_daily=1, keep_weekly=0, keep_monthly=0, max_age_days=90, min_keep=0)
    when = datetime(2026, 11, 26, 3, tzinfo=UTC)
    assert kept_ids(apply_policy([b("snap-b", when), b("snap-a", when)], policy, NOW)) == {"snap-b"}


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        b("naive", datetime(2026, 11, 26, 3))
    with pytest.raises(ValueError, match="only a pending backup"):
        b("no-time", None, State.USABLE)
    with pytest.raises(ValueError, match="appears twice"):
        apply_policy([b("x", NOW), b("x", NOW)], DEFAULT, NOW)
    with pytest.raises(ValueError, match="keep_daily"):
        RetentionPolicy(keep_daily=-1, keep_weekly=0, keep_monthly=0, max_age_days=1, min_keep=1)


START = NOW - timedelta(days=400)
states = st.sampled_from([State.USABLE] * 6 + [State.PENDING, State.FAILED])


@st.composite
def backup_sets(draw: st.DrawFn) -> list[Backup]:
    count = draw(st.integers(min_value=0, max_value=40))
    backups = []
    for i in range(count):
        minutes = draw(st.integers(min_value=0, max_value=410 * 24 * 60))
        state = draw(states)
        created = START + timedelta(minutes=minutes)
        if state is State.PENDING and draw(st.booleans()):
            created = None
        backups.append(
            Backup(
                id=f"id-{i:03d}",
                source=draw(st.sampled_from(["a", "b"])),
                kind=draw(st.sampled_from(["rds", "ami"])),
                created=created,
                state=state,
            )
        )
    return backups


policies = st.builds(
    RetentionPolicy,
    keep_daily=st.integers(0, 10),
    keep_weekly=st.integers(0, 6),
    keep_monthly=st.integers(0, 4),
    max_age_days=st.integers(1, 200),
    min_keep=st.integers(0, 5),
)

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def newest_usable(backups: list[Backup], n: int) -> set[str]:
    result: set[str] = set()
    for source, kind in {(x.source, x.kind) for x in backups}:
        usable = [x for x in backups if (x.source, x.kind) == (source, kind) and x.state is State.USABLE]
        usable.sort(key=lambda x: (x.created, x.id), reverse=True)
        result |= {x.id for x in usable[:n]}
    return result


@PROPS
@given(backup_sets(), policies)
def test_never_deletes_one_of_the_newest_min_keep_usable_backups(
    backups: list[Backup], policy: RetentionPolicy
) -> None:
    protected = newest_usable(backups, policy.min_keep)
    assert protected <= kept_ids(apply_policy(backups, policy, NOW))


@PROPS
@given(backup_sets(), policies)
def test_never_deletes_a_pending_backup(backups: list[Backup], policy: RetentionPolicy) -> None:
    pending = {x.id for x in backups if x.state is State.PENDING}
    assert pending <= kept_ids(apply_policy(backups, policy, NOW))


@PROPS
@given(backup_sets(), policies)
def test_keeps_nothing_older_than_max_age_unless_min_keep_or_pending_demands_it(
    backups: list[Backup], policy: RetentionPolicy
) -> None:
    protected = newest_usable(backups, policy.min_keep)
    cutoff = NOW - timedelta(days=policy.max_age_days)
    for decision in apply_policy(backups, policy, NOW):
        x = decision.backup
        if decision.keep and x.created is not None and x.created < cutoff:
            assert x.id in protected or x.state is State.PENDING, decision


@PROPS
@given(backup_sets(), policies)
def test_applying_the_policy_to_what_it_kept_deletes_nothing_more(
    backups: list[Backup], policy: RetentionPolicy
) -> None:
    kept = [d.backup for d in apply_policy(backups, policy, NOW) if d.keep]
    again = apply_policy(kept, policy, NOW)
    assert all(d.keep for d in again), [d for d in again if not d.keep]


@PROPS
@given(backup_sets(), policies, st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(
    backups: list[Backup], policy: RetentionPolicy, rnd: random.Random
) -> None:
    shuffled = list(backups)
    rnd.shuffle(shuffled)
    assert apply_policy(shuffled, policy, NOW) == apply_policy(backups, policy, NOW)


@PROPS
@given(backup_sets(), policies)
def test_every_backup_gets_exactly_one_decision_with_a_reason(
    backups: list[Backup], policy: RetentionPolicy
) -> None:
    decisions = apply_policy(backups, policy, NOW)
    assert sorted(d.backup.id for d in decisions) == sorted(x.id for x in backups)
    assert all(d.reason for d in decisions)


@PROPS
@given(backup_sets(), policies)
def test_each_rule_keeps_the_newest_usable_backup_of_its_most_recent_buckets(
    backups: list[Backup], policy: RetentionPolicy
) -> None:
    """An independent statement of the daily rule: for the newest N distinct days with a usable
    backup younger than the cutoff, the newest backup of that day is kept."""
    kept = kept_ids(apply_policy(backups, policy, NOW))
    cutoff = NOW - timedelta(days=policy.max_age_days)
    for source, kind in {(x.source, x.kind) for x in backups}:
        usable = [x for x in backups if (x.source, x.kind) == (source, kind) and x.state is State.USABLE]
        newest_per_day: dict[str, Backup] = {}
        for x in usable:
            assert x.created is not None
            day = x.created.strftime("%Y-%m-%d")
            cur = newest_per_day.get(day)
            if cur is None or (x.created, x.id) > (cur.created, cur.id):
                newest_per_day[day] = x
        for day in sorted(newest_per_day, reverse=True)[: policy.keep_daily]:
            x = newest_per_day[day]
            assert x.created is not None
            if x.created >= cutoff:
                assert x.id in kept
