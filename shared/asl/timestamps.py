"""ASL timestamps: RFC 3339 with an uppercase ``T`` and either ``Z`` or a numeric offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")


def parse_timestamp(value: object) -> datetime | None:
    """The aware datetime ``value`` denotes, or None when it is not an ASL timestamp."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    date, time, fraction, zone = match.groups()
    # datetime accepts at most microseconds; finer digits cannot change an ordering that matters.
    micro = f".{(fraction + '000000')[:6]}" if fraction else ""
    offset = "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(f"{date}T{time}{micro}{offset}")
    except ValueError:  # e.g. month 13
        return None


def format_timestamp(moment: datetime) -> str:
    """The ISO 8601 form Step Functions uses in the context object (UTC, milliseconds, ``Z``)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
