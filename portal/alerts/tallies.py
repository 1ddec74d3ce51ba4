"""Monotonic figures for /metrics, counted where the event happens (step failures, step durations)."""

from __future__ import annotations

from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import F

from portal.alerts.models import Tally

# Upper bounds (seconds) of the step-duration histogram; +Inf is implied.
STEP_DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
INF = float("inf")


def tally_add(*, name: str, key: str, amount: float = 1) -> None:
    """Add to one tally in the caller's transaction; the first add creates it."""
    if Tally.objects.filter(name=name, key=key).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            Tally.objects.create(name=name, key=key, value=amount)
    except IntegrityError:  # another transaction created it first
        Tally.objects.filter(name=name, key=key).update(value=F("value") + amount)


def bucket_for(seconds: float) -> float:
    return next((bound for bound in STEP_DURATION_BUCKETS if seconds <= bound), INF)


def step_observe(*, spool: str, seconds: float | None, failed: bool) -> None:
    """One finished step attempt: its duration in the spool's histogram, and a failure counted."""
    if seconds is not None:
        seconds = max(seconds, 0.0)
        tally_add(name="step_duration_bucket", key=f"{spool}|{bucket_for(seconds)}")
        tally_add(name="step_duration_sum", key=spool, amount=seconds)
    if failed:
        tally_add(name="step_failures", key=spool)


def tallies(name: str) -> dict[str, float]:
    return dict(Tally.objects.filter(name=name).values_list("key", "value"))


def step_duration_histograms() -> dict[str, tuple[list[tuple[str, float]], float]]:
    """Spool -> (cumulative buckets as (le, count) with +Inf last, sum of seconds)."""
    counts: dict[str, dict[float, float]] = defaultdict(dict)
    for key, value in tallies("step_duration_bucket").items():
        spool, _, bound = key.rpartition("|")
        counts[spool][float(bound)] = value
    sums = tallies("step_duration_sum")
    result = {}
    for spool, by_bound in counts.items():
        running, buckets = 0.0, []
        for bound in (*STEP_DURATION_BUCKETS, INF):
            running += by_bound.get(bound, 0)
            buckets.append(("+Inf" if bound == INF else repr(bound), running))
        result[spool] = (buckets, sums.get(spool, 0.0))
    return result
