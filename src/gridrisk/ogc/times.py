"""The OGC `datetime` parameter: an RFC 3339 instant or interval, as bounds on a temporal property."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple


class TimeFilter(NamedTuple):
    """A datetime filter as bounds on the temporal property: [start, end] or [start, end)."""

    start: datetime | None
    end: datetime | None
    end_inclusive: bool = True


_INSTANT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?:(?P<h>\d{2})(?::(?P<m>\d{2})(?::(?P<s>\d{2})(?P<frac>\.\d+)?)?)?)?)?"
    # A space stands for '+': an unencoded '+' in a query string arrives as one.
    r"(?P<tz>[Zz]|[+\- ]\d{2}:?\d{2})?"
)


def _instant(text: str) -> tuple[datetime, timedelta | None]:
    """An RFC 3339 instant, and the span its precision covers (None: an exact instant).

    Lenient on precision on purpose: `2026-07-01` is that day, `2026-07-01T08Z` that hour, and
    `2026-07-01T` (what GDAL's OAPIF driver sends for a date) the day as well. Without an offset
    the time is UTC.
    """
    m = _INSTANT.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"'{text}' is not an RFC 3339 date-time (e.g. 2026-07-01T08:00:00Z)")
    tz = UTC
    if m["tz"] and m["tz"] not in "Zz":
        sign = -1 if m["tz"][0] == "-" else 1
        hh, mm = int(m["tz"][1:3]), int(m["tz"][-2:])
        if hh > 23 or mm > 59:
            raise ValueError(f"'{text}' has an invalid UTC offset")
        tz = timezone(sign * timedelta(hours=hh, minutes=mm))
    year, month, day = (int(x) for x in m["date"].split("-"))
    frac = m["frac"]
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        value = datetime(
            year, month, day, int(m["h"] or 0), int(m["m"] or 0), int(m["s"] or 0), micro, tzinfo=tz
        )
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid date-time: {exc}") from None
    if frac:
        return value, None
    if m["s"]:
        return value, timedelta(seconds=1)
    if m["m"]:
        return value, timedelta(minutes=1)
    if m["h"]:
        return value, timedelta(hours=1)
    return value, timedelta(days=1)


def parse_datetime(text: str) -> TimeFilter | None:
    """The OGC `datetime` parameter (an instant, or an interval with `..` or empty open ends).

    Interval ends are inclusive; an end given to a precision (a date, a whole second) includes all
    of it. Returns None for `../..` (no bound). Raises ValueError naming what is wrong.
    """
    text = text.strip()
    if not text:
        raise ValueError("datetime is empty")
    if "/" not in text:
        start, span = _instant(text)
        return TimeFilter(start, start + span, False) if span else TimeFilter(start, start, True)
    if text.count("/") != 1:
        raise ValueError("an interval has exactly one '/': start/end, ../end or start/..")
    left, right = (part.strip() for part in text.split("/"))
    start = None if left in ("", "..") else _instant(left)[0]
    end, inclusive = None, True
    if right not in ("", ".."):
        value, span = _instant(right)
        end, inclusive = (value + span, False) if span else (value, True)
    if start is None and end is None:
        return None
    if start is not None and end is not None and (end < start or (end == start and not inclusive)):
        raise ValueError(f"the interval ends before it starts ('{text}')")
    return TimeFilter(start, end, inclusive)
