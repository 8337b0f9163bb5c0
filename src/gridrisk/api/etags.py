"""ETags carry a record's version; If-Match turns a stale write into 412 instead of a lost update."""

from __future__ import annotations

from gridrisk.errors import InvalidInput, PreconditionFailed, PreconditionRequired


def etag(version: int) -> str:
    return f'"{version}"'


def not_modified(header: str | None, tag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison of the header's tags with TAG, or `*` (then 304)."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or tag in tags


def parse_if_match(header: str | None, *, required: bool) -> int | None:
    """The version named by If-Match (`"3"`, `W/"3"` or `3`); None when absent and optional."""
    if header is None or not header.strip():
        if required:
            raise PreconditionRequired(
                "Send If-Match with the ETag from your last read, so that concurrent edits are not lost."
            )
        return None
    value = header.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.isdigit():
        raise InvalidInput(
            f'If-Match {header!r} is not an ETag of this API (they look like "3").',
            errors=[{"field": "If-Match", "message": "expected a quoted version number"}],
        )
    return int(value)


def check_version(current: int, expected: int | None) -> None:
    """412 with the current ETag when the client's version is stale."""
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"The record changed since you read it (you sent version {expected}, it is now {current}); "
            "read it again and re-apply your change.",
            headers={"ETag": etag(current)},
            current_version=current,
        )
