"""Who labelled a feedback: a labeller key or the admin key makes the label trusted (it may train).

``X-Labeller-Key`` carries one of ``HOUSING_LABELLER_KEYS`` or ``HOUSING_API_KEY``; without the
header the feedback is anonymous (live accuracy only), and a wrong key is refused (401) rather
than quietly downgraded, so a labeller with a typo finds out.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader

from api.deps import SettingsDep, key_matches

LabelSource = Literal["anonymous", "labeller", "admin"]
labeller_key_header = APIKeyHeader(name="X-Labeller-Key", auto_error=False)


async def label_source(
    settings: SettingsDep, key: Annotated[str | None, Security(labeller_key_header)]
) -> LabelSource:
    """``anonymous`` without a key, ``admin`` or ``labeller`` for a right one; 401 otherwise."""
    if key is None:
        return "anonymous"
    if settings.api_key is not None and key_matches(key, [settings.api_key]):
        return "admin"
    if key_matches(key, settings.labeller_keys):
        return "labeller"
    raise HTTPException(401, "wrong X-Labeller-Key header (omit it to send anonymous feedback)")


LabelSourceDep = Annotated[LabelSource, Depends(label_source)]
