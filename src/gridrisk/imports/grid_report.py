"""The grid validation report: what is wrong with a delivered layer, JSON-ready for its technician."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ValidationReport:
    """What is wrong with a grid layer, for the technician who delivered it; `ok` means no errors."""

    ok: bool
    feature_count: int
    source_crs: str
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    repaired: list[dict[str, Any]]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: areas rounded to 0.01 m², shares to 0.0001, locations to 7 decimals."""
        return {
            "ok": self.ok,
            "feature_count": int(self.feature_count),
            "source_crs": self.source_crs,
            "errors": [_jsonable(item) for item in self.errors],
            "warnings": [_jsonable(item) for item in self.warnings],
            "repaired": [_jsonable(item) for item in self.repaired],
            "summary": _jsonable(self.summary),
        }


def _jsonable(value: Any, key: str = "") -> Any:
    """Plain Python values with the report's rounding; NaN and infinity become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v, key) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return round(number, 7 if key == "location" else 4 if key == "share" else 2)
    return value
