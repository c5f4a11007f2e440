"""Streamlit UI: talks to the API over HTTP only."""
