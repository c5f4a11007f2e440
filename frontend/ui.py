"""Streamlit pieces every page shares: the API client and plain messages when the API fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from frontend.client import ApiClient
from frontend.errors import ApiError, ApiRequestError, ApiUnavailable, ApiValidationError
from frontend.settings import UISettings


@st.cache_resource(show_spinner=False)
def _client_for(settings_json: str) -> ApiClient:
    """One client (and connection pool) per configuration, shared by every session."""
    return ApiClient(UISettings.model_validate_json(settings_json))


def client() -> ApiClient:
    """The client for the API named by the environment right now (read on every run)."""
    return _client_for(UISettings().model_dump_json())


READ_KEY = "read-key"
"""Session state: the read key typed on a log page (kept for the session's other pages)."""


def read_key() -> str | None:
    """The key for the log's contents: the UI's HOUSING_READ_KEY, else one typed once in this
    browser session (never written to a file or a URL); None until there is one."""
    configured = UISettings().read_key
    if configured is not None:
        return configured.get_secret_value()
    typed = st.text_input(
        "Read key",
        value=st.session_state.get(READ_KEY, ""),
        type="password",
        key=f"{READ_KEY}-input",
        help="One of the API's HOUSING_READ_KEYS (or its admin key). Kept in this session only.",
    )
    if typed:
        st.session_state[READ_KEY] = typed
    return typed or None


def say_unavailable(exc: ApiUnavailable, where: str = "page") -> None:
    """The plain message a page shows instead of its content while the API cannot serve it."""
    if exc.status_code is None:
        st.error(
            f"**The prediction API is not available** — {exc.message}.\n\n"
            "Start it with `housing serve` (or check `HOUSING_API_URL`); this page works again "
            "as soon as the API is back.",
            icon=":material/cloud_off:",
        )
    else:
        st.error(
            f"**The prediction API is not available right now** — {exc.message}.\n\n"
            "It is running but cannot serve this yet; this page works again once it can.",
            icon=":material/cloud_off:",
        )
    st.button("Try again", key=f"retry-{where}", icon=":material/refresh:")


@contextmanager
def api_errors(stop: bool = True, where: str = "page") -> Iterator[None]:
    """API failures inside the block become a plain message (the page ends there if ``stop``).

    Validation errors pass through: the page shows them next to their fields. ``where`` tells
    apart the "Try again" buttons of two blocks on one page.
    """
    try:
        yield
    except ApiValidationError:
        raise  # the page shows those next to their fields
    except ApiUnavailable as exc:
        say_unavailable(exc, where)
        if stop:
            st.stop()
    except ApiRequestError as exc:
        st.error(f"**The request could not be sent** — {exc.message}", icon=":material/error:")
        if stop:
            st.stop()
    except ApiError as exc:
        st.error(f"**The API could not answer** — {exc.message}", icon=":material/error:")
        if stop:
            st.stop()


def dollars(value: float | None) -> str:
    """A dollar amount for people: $1,234,567."""
    return "—" if value is None else f"${value:,.0f}"
