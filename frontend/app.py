"""The Streamlit entry point (`housing ui`): page navigation and the API status in the sidebar."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from frontend.errors import ApiError
from frontend.ui import client

VIEWS = Path(__file__).resolve().parent / "views"


def sidebar_status() -> None:
    """Which API the UI talks to, and whether it answers right now."""
    api = client()
    with st.sidebar:
        try:
            seconds = api.ping()
        except ApiError:
            st.caption(f":red[● API down] · `{api.base_url}`")
        else:
            st.caption(f":green[● API up] ({seconds * 1000:.0f} ms) · `{api.base_url}`")


def main() -> None:
    st.set_page_config(
        page_title="California house values", page_icon=":material/home:", layout="wide"
    )
    page = st.navigation(
        [
            st.Page(VIEWS / "predict.py", title="Predict", icon=":material/calculate:"),
            st.Page(VIEWS / "history.py", title="History", icon=":material/history:"),
            st.Page(VIEWS / "drift.py", title="Drift", icon=":material/query_stats:"),
            st.Page(VIEWS / "models.py", title="Models", icon=":material/model_training:"),
            st.Page(VIEWS / "service.py", title="Service", icon=":material/monitor_heart:"),
            st.Page(VIEWS / "admin.py", title="Admin", icon=":material/admin_panel_settings:"),
        ]
    )
    sidebar_status()
    page.run()


main()
