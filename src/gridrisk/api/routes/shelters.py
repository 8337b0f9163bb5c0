"""Placeholder router, filled in by the shelters and hazard-points work."""

from fastapi import APIRouter

router = APIRouter()
