"""Placeholder router, filled in by the risk-map work."""

from fastapi import APIRouter

router = APIRouter()
