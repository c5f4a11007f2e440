"""The feature spec, for forms and clients."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter

from housing.service.schemas import SchemaInfo, schema_info

router = APIRouter(tags=["schema"])


@router.get("/schema", response_model=SchemaInfo)
async def schema() -> SchemaInfo:
    """Every feature (name, unit, description, min, max, typical) and the cross-field rules."""
    return _cached()


@lru_cache(maxsize=1)
def _cached() -> SchemaInfo:
    return schema_info()
