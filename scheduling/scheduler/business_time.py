"""Business time of a calendar (DOMAIN §2) over plain values, DST-correct with zoneinfo.

A business day is neither a weekend day nor a closed date; on such a day the
calendar is open inside [open, close) of any period, read on the wall clock of
the calendar's time zone (no period: the whole day). Everything here is pure:
the models build a ``Calendar`` from their rows and ask it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# How far ahead the next open instant is looked for; a calendar closed for
# longer than this is treated as never opening again (a configuration error).
HORIZON_DAYS = 731

ONE_SECOND = dt.timedelta(seconds=1)


def _wall(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _first_instant_showing(naive: dt.datetime, zone: ZoneInfo, low: dt.datetime, high: dt.datetime) -> dt.datetime:
    """The first instant in (low, high] whose wall clock reads ``naive`` or later.

    ``low`` shows an earlier wall time and ``high`` a later-or-equal one; the
    wall clock only jumps forward in between (a DST gap), so bisect to the second.
    """
    while high - low > ONE_SECOND:
        middle = low + dt.timedelta(seconds=int((high - low).total_seconds()) // 2)
        if _wall(middle, zone) >= naive:
            high = middle
        else:
            low = middle
    return high


def wall_instant(day: dt.date, wall: dt.time, zone: ZoneInfo, fold: int = 0) -> dt.datetime:
    """The UTC instant at which the wall clock of ``zone`` on ``day`` reads ``wall``.

    An ambiguous wall time (the repeated hour of autumn) has two instants: fold 0
    is the first, fold 1 the second. A wall time that does not exist (skipped by
    the spring change) is reached at the change itself: the first instant that
    shows a later time.
    """
    naive = dt.datetime.combine(day, wall)
    instant = naive.replace(tzinfo=zone, fold=fold).astimezone(dt.UTC)
    if _wall(instant, zone) == naive:
        return instant
    bounds = sorted(naive.replace(tzinfo=zone, fold=f).astimezone(dt.UTC) for f in (0, 1))
    return _first_instant_showing(naive, zone, bounds[0], bounds[1])


def offset_change(day: dt.date, zone: ZoneInfo) -> dt.datetime | None:
    """The instant the UTC offset of ``zone`` changes on ``day``, if it does."""
    start = wall_instant(day, dt.time(0), zone)
    end = wall_instant(day + dt.timedelta(days=1), dt.time(0), zone) - ONE_SECOND
    after = end.astimezone(zone).utcoffset()
    if start.astimezone(zone).utcoffset() == after:
        return None
    low, high = start, end
    while high - low > ONE_SECOND:
        middle = low + dt.timedelta(seconds=int((high - low).total_seconds()) // 2)
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    weekend_days: frozenset[int]  # ISO weekday numbers, 1 = Monday
    closed_dates: frozenset[dt.date]
    periods: tuple[tuple[dt.time, dt.time], ...]  # [open, close) on the wall clock; empty: the whole day

    @classmethod
    def build(
        cls,
        *,
        timezone: str,
        weekend_days: Iterable[int],
        closed_dates: Iterable[dt.date],
        periods: Iterable[tuple[dt.time, dt.time]],
    ) -> Calendar:
        return cls(ZoneInfo(timezone), frozenset(weekend_days), frozenset(closed_dates), tuple(periods))

    def is_business_day(self, day: dt.date) -> bool:
        return day.isoweekday() not in self.weekend_days and day not in self.closed_dates

    def is_open(self, instant: dt.datetime) -> bool:
        local = _wall(instant, self.zone)
        if not self.is_business_day(local.date()):
            return False
        if not self.periods:
            return True
        moment = local.time()
        return any(opening <= moment < closing for opening, closing in self.periods)

    def _openings(self, day: dt.date) -> set[dt.datetime]:
        """Every instant of ``day`` at which the calendar may go from closed to open.

        That is: the start of the day, each opening time (both occurrences when
        the autumn change repeats it), and the offset change itself, where the
        wall clock jumps back into a period.
        """
        walls = [dt.time(0), *(opening for opening, _ in self.periods)]
        candidates = {wall_instant(day, wall, self.zone, fold) for wall in walls for fold in (0, 1)}
        change = offset_change(day, self.zone)
        if change is not None:
            candidates.add(change)
        return candidates

    def next_open(self, instant: dt.datetime, horizon_days: int = HORIZON_DAYS) -> dt.datetime | None:
        """``instant`` itself when open, else the first later instant of business time.

        None when the calendar stays closed for ``horizon_days``.
        """
        if self.is_open(instant):
            return instant
        first_day = _wall(instant, self.zone).date()
        for offset in range(horizon_days + 1):
            day = first_day + dt.timedelta(days=offset)
            if not self.is_business_day(day):
                continue
            later = sorted(c for c in self._openings(day) if c > instant)
            for candidate in later:
                if self.is_open(candidate):
                    return candidate
        return None


def calendars_open(calendars: Iterable[Calendar], instant: dt.datetime) -> bool:
    """Several calendars are open when any is; none at all is open around the clock."""
    calendars = list(calendars)
    return not calendars or any(calendar.is_open(instant) for calendar in calendars)


def calendars_next_open(calendars: Iterable[Calendar], instant: dt.datetime) -> dt.datetime | None:
    calendars = list(calendars)
    if not calendars:
        return instant
    found = [moment for calendar in calendars if (moment := calendar.next_open(instant)) is not None]
    return min(found, default=None)
