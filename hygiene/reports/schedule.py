"""When a subscription is next due: its local hour, on its weekday or the 1st, in its time zone."""
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _at(day, hour, tz):
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz)


def next_due(frequency, hour, time_zone, after, weekday=0):
    """The first due moment strictly after `after` (an aware datetime), in UTC."""
    tz = zone(time_zone)
    local = after.astimezone(tz)
    day = local.date()
    if frequency == "daily":
        candidate = _at(day, hour, tz)
        if candidate <= local:
            candidate = _at(day + timedelta(days=1), hour, tz)
    elif frequency == "weekly":
        day = day + timedelta(days=(weekday - day.weekday()) % 7)
        candidate = _at(day, hour, tz)
        if candidate <= local:
            candidate = _at(day + timedelta(days=7), hour, tz)
    else:  # monthly, on the 1st
        candidate = _at(day.replace(day=1), hour, tz)
        if candidate <= local:
            first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            candidate = _at(first, hour, tz)
    return candidate.astimezone(dt_timezone.utc)


def next_due_for(subscription, after):
    return next_due(subscription.frequency, subscription.hour, subscription.time_zone, after, subscription.weekday)
