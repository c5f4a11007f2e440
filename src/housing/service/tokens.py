"""Feedback tokens: a prediction's answer carries a secret only its caller knows.

Prediction ids are logged, listed by ``GET /predictions`` to readers and shown in the UI; a
label must not be accepted just because someone saw an id. ``/predict`` answers a random token
and the log keeps its sha256 only (a leaked log or database copy cannot forge feedback);
``/feedback`` must quote it. A batch gets one token for all its rows.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 24
"""Random bytes per token (32 URL-safe characters)."""
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"  # nosec B105 - a pattern, not a secret
"""What a token can look like (``secrets.token_urlsafe`` output), to refuse junk early."""


def new_token() -> tuple[str, str]:
    """A fresh token and the sha256 (hex) to log in its place."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_sha256(token)


def token_sha256(token: str) -> str:
    """The hex sha256 of ``token`` (what the log stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, stored_sha256: str | None) -> bool:
    """Whether ``token`` is the one whose hash was logged (constant-time compare)."""
    if token is None or stored_sha256 is None:
        return False
    return secrets.compare_digest(token_sha256(token), stored_sha256)


def canonical_prediction_id(prediction_id: str) -> str:
    """``<request id>`` or ``<request id>-<row>`` with the row index without leading zeros, so
    ``-0``, ``-00`` and ``-000`` name one batch row (and can be labelled once)."""
    request_id, dash, index = prediction_id.partition("-")
    return f"{request_id}-{int(index)}" if dash else request_id
