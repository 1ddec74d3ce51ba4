"""AT_RISK batches learned from history (DOMAIN §8): a source later than it usually is, before the window ends."""

from __future__ import annotations

import datetime as dt

import pytest

from monitoring.batches.models import BatchAlert, BatchConfig
from monitoring.batches.scan import batch_scan
from portal import clock
from portal.alerts.models import AlertEpisode
from portal.validation import schema_errors

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
DAY = dt.timedelta(hours=24)
# gl_lines arrived 5 to 10 minutes after the window start; its 90th percentile over 20 windows is 10 minutes.
GL_LINES_MINUTES = [5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6, 10, 10, 10]


def iso(instant: dt.datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def arrive_at(arrive, source: str, window_start: dt.datetime, minutes: float) -> None:
    """``source`` of the window starting at ``window_start`` recorded ``minutes`` after that start."""
    with clock.frozen(window_start + dt.timedelta(minutes=minutes)):
        arrive(source, iso(window_start + dt.timedelta(hours=1 if source == "gl_lines" else 0)))


def history(arrive, lines_minutes: list[int]) -> dt.datetime:
    """Completed windows, one a day from T0: gl_headers a minute after the start, gl_lines as given. Returns the next start."""
    for index, minutes in enumerate(lines_minutes):
        start = T0 + index * DAY
        arrive_at(arrive, "gl_headers", start, 1)
        arrive_at(arrive, "gl_lines", start, minutes)
    return T0 + len(lines_minutes) * DAY


def scan(at: dt.datetime):
    clock.set_now(at)
    return batch_scan(now=at)


def test_a_source_late_on_its_usual_arrival_makes_the_config_at_risk_once_then_recovered(make_config, arrive, messages):
    config = make_config()
    start = history(arrive, GL_LINES_MINUTES)
    config.refresh_from_db()
    assert config.usual_arrivals == {"gl_headers": 60, "gl_lines": 600}

    arrive_at(arrive, "gl_headers", start, 1)
    scan(start + dt.timedelta(minutes=1))
    scan(start + dt.timedelta(minutes=19, seconds=59))
    assert messages("AT_RISK") == []

    scan(start + dt.timedelta(minutes=20))
    scan(start + dt.timedelta(minutes=25))
    [risk] = messages("AT_RISK")
    assert risk["exceptionName"] == "AT_RISK" and risk["exceptionFlag"] == "Y"
    assert risk["exceptionArgument"] == "gl_lines"
    assert "gl_lines usually arrives by 00:10 UTC" in risk["eventMessage"]
    assert schema_errors("control_message", risk) == []
    assert BatchAlert.objects.get(config=config).state == "AT_RISK"
    assert AlertEpisode.objects.get(kind="BATCH_AT_RISK").summary == risk["eventMessage"]

    arrive_at(arrive, "gl_lines", start, 30)
    scan(start + dt.timedelta(minutes=30))
    [recovered] = messages("RECOVERED")
    assert recovered["btch_dtl"]["window_start"] == iso(start)
    assert len(messages("AT_RISK")) == 1
    assert AlertEpisode.objects.get(kind="BATCH_AT_RISK").state == "RESOLVED"


def test_at_risk_turns_open_at_the_window_end_with_one_message_each(make_config, arrive, messages):
    make_config()
    start = history(arrive, GL_LINES_MINUTES)
    arrive_at(arrive, "gl_headers", start, 1)
    for minutes in (20, 60, 23 * 60):
        scan(start + dt.timedelta(minutes=minutes))
    scan(start + DAY + dt.timedelta(minutes=1))

    assert len(messages("AT_RISK")) == 1
    [opened] = messages("OPEN")
    assert opened["btch_dtl"]["missing_sources"] == ["gl_lines"]


def test_four_completed_windows_are_too_few_to_be_at_risk(make_config, arrive, messages):
    config = make_config()
    start = history(arrive, [5, 6, 7, 8])
    config.refresh_from_db()
    assert config.usual_arrivals == {}

    arrive_at(arrive, "gl_headers", start, 1)
    for minutes in (20, 60, 600, 23 * 60):
        scan(start + dt.timedelta(minutes=minutes))
    assert messages("AT_RISK") == []
    assert BatchAlert.objects.get(config=config).state == "NONE"


def test_one_list_that_completes_windows_of_two_configs_learns_each_from_its_own_last_twenty(make_config):
    """Learning runs once per request over every config it completed: each config's own windows, only the last 20."""
    from monitoring.batches.services import arrivals_record

    make_config(name="EARLY", sources=("e_lines",), window_hours=1)
    make_config(name="LATE", sources=("l_lines",), window_hours=1)
    items = []
    for hour in range(25):
        start = T0 + dt.timedelta(hours=hour)
        items.append({"tenant": "acme", "source": "e_lines", "extract_timestamp": iso(start + dt.timedelta(minutes=1))})
        items.append({"tenant": "acme", "source": "l_lines", "extract_timestamp": iso(start + dt.timedelta(minutes=50))})
    with clock.frozen(T0 + 2 * DAY):
        arrivals_record(items=items)
    learned = dict(BatchConfig.objects.filter(name__in=["EARLY", "LATE"]).values_list("name", "usual_arrivals"))
    # All received at T0 + 48 h: window k (0..24) of a config is received 48 h - k h - its first minute after its
    # start. The last 20 are k = 5..24; their 90th percentile (the 18th smallest) is k = 7: 41 h less the minute.
    # Over all 25 it would be k = 2.
    assert learned == {"EARLY": {"e_lines": 41 * 3600 - 60}, "LATE": {"l_lines": 41 * 3600 - 50 * 60}}
