"""What one logged request may store: a few kilobytes, whatever the client sent.

Without a bound a stream of 1 MB invalid bodies under the rate limit grew the log by 326 MB in
4.6 s, and a 200 batch of 1,000 rejected rows stored its 1 MB of junk and its 1,000 error lists.
A rejected request keeps its body as JSON when that is small, else as the first
``MAX_STORED_BYTES`` of its text; error lists keep the entries that fit and say how many more
there were. A batch answered 200 keeps the houses it predicted (validated: 8 numbers each) and
none of the rows it rejected.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_STORED_BYTES = 2048
"""Bytes of a rejected body, and of an error summary, kept in the log."""
TRUNCATED_RULE = "truncated"


def _size(value: Any) -> int:
    try:
        return len(orjson.dumps(value, default=str))
    except (TypeError, orjson.JSONEncodeError):  # what orjson refuses: count its text
        return len(str(value).encode("utf-8", "replace"))


def clip_text(text: str, limit: int = MAX_STORED_BYTES) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (never inside a character)."""
    data = text.encode("utf-8", "replace")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def bounded_body(inputs: Any, raw_body: str | None) -> tuple[Any, str | None]:
    """A rejected body for the log: small JSON as it came, large JSON as the start of its text."""
    if raw_body is not None:
        raw_body = clip_text(raw_body)
    if inputs is None or _size(inputs) <= MAX_STORED_BYTES:
        return inputs, raw_body
    text = orjson.dumps(inputs, default=str).decode("utf-8", "replace")
    return None, clip_text(text)


def bounded_errors(error: Any) -> Any:
    """An error for the log: a text or a list kept within ``MAX_STORED_BYTES``; a list that is
    longer keeps its first entries and ends with one saying how many were left out."""
    if isinstance(error, str):
        return clip_text(error)
    if not isinstance(error, list) or _size(error) <= MAX_STORED_BYTES:
        return error if _size(error) <= MAX_STORED_BYTES else clip_text(str(error))
    kept: list[Any] = []
    used = 100  # room for the closing entry
    for item in error:
        size = _size(item) + 1
        if used + size > MAX_STORED_BYTES:
            break
        kept.append(item)
        used += size
    left_out = len(error) - len(kept)
    kept.append({"field": "body", "rule": TRUNCATED_RULE, "message": f"{left_out} more not logged"})
    return kept
