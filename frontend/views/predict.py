"""Predict: one house from a form built from GET /schema, or many from a CSV file."""

from __future__ import annotations

import math

import pydeck as pdk
import streamlit as st

from frontend import batch, intervals
from frontend.api_types import FeatureSpec, Prediction, SchemaInfo
from frontend.errors import ApiValidationError, FieldError
from frontend import explain_panel
from frontend.ui import api_errors, client, dollars

# The state outline is a constant of the package (no model, no I/O): the map shows it so the
# location reads right even without map tiles (none can be fetched offline).
from housing.geo import CALIFORNIA_OUTLINE


@st.cache_data(ttl=300, show_spinner=False)
def load_schema(api_url: str) -> SchemaInfo:
    """The feature spec; cached per API for a few minutes (it changes only with a release)."""
    return client().schema()


def step_for(spec: FeatureSpec) -> float:
    """A +/- step of about 1% of the typical value, rounded to a power of ten."""
    return 10.0 ** (math.floor(math.log10(abs(spec.typical) or 1.0)) - 2)


def decimals(value: float, most: int = 4) -> int:
    """Decimals needed to show ``value`` exactly (at most ``most``)."""
    for places in range(most + 1):
        if abs(round(value, places) - value) < 1e-9:
            return places
    return most


def number_format(spec: FeatureSpec, step: float) -> str:
    """Enough decimals for the step and for the typical value, so the default shows as is."""
    return f"%.{max(decimals(step), decimals(spec.typical))}f"


def location_map(latitude: float, longitude: float) -> pdk.Deck:
    """The house as a dot inside the California outline."""
    outline = [{"polygon": [list(point) for point in CALIFORNIA_OUTLINE]}]
    house = [{"lat": latitude, "lon": longitude}]
    return pdk.Deck(
        map_style=None,
        initial_view_state=pdk.ViewState(latitude=latitude, longitude=longitude, zoom=4.4),
        layers=[
            pdk.Layer(
                "PolygonLayer",
                outline,
                get_polygon="polygon",
                get_fill_color=[46, 125, 50, 30],
                get_line_color=[46, 125, 50, 200],
                line_width_min_pixels=1,
            ),
            pdk.Layer(
                "ScatterplotLayer",
                house,
                get_position="[lon, lat]",
                get_fill_color=[198, 40, 40, 230],
                get_radius=6000,
                radius_min_pixels=6,
            ),
        ],
        tooltip={"text": "{lat}, {lon}"},
    )


def one_house(schema: list[FeatureSpec]) -> None:
    """The form, its per-field errors, the answer and the map."""
    values: dict[str, float] = {}
    slots = {}
    form_col, map_col = st.columns([3, 2], gap="large")
    with form_col, st.form("house"):
        st.markdown("**Describe the census block group**")
        general = st.empty()
        fields = st.columns(2)
        for i, spec in enumerate(schema):
            step = step_for(spec)
            with fields[i % 2]:
                # No min/max on the widget: the API is the one validator, and its message is
                # the one shown next to the field. The range is in the help text.
                values[spec.name] = st.number_input(
                    f"{spec.name} ({spec.unit})",
                    value=float(spec.typical),
                    step=step,
                    format=number_format(spec, step),
                    help=f"{spec.description}. Allowed: {spec.min:g} to {spec.max:g}.",
                    key=f"feature-{spec.name}",
                )
                slots[spec.name] = st.empty()
        submitted = st.form_submit_button("Predict", type="primary", icon=":material/calculate:")

    result: Prediction | None = None
    if submitted:
        try:
            with api_errors(stop=False, where="predict"):
                result = client().predict(values)
                st.session_state["last-prediction"] = (result, dict(values))
        except ApiValidationError as exc:
            st.session_state.pop("last-prediction", None)
            show_field_errors(exc.errors, slots, general)
    elif "last-prediction" in st.session_state:
        result, values = st.session_state["last-prediction"]

    with map_col:
        if result is not None:
            st.metric(
                "Predicted median house value",
                dollars(result.prediction_dollars),
                help=f"{result.prediction:.4f} in units of $100,000",
            )
            if result.interval is not None:
                st.markdown(f"**{intervals.sentence(result.prediction_dollars, result.interval)}**")
                st.altair_chart(
                    intervals.range_chart(result.prediction_dollars, result.interval),
                    key="house-interval",
                )
            else:
                st.caption("This model version was trained without prediction intervals.")
            st.caption(
                f"model `{result.model_name}` version **{result.model_version}**"
                + f" · prediction id `{result.prediction_id}`"
            )
        st.pydeck_chart(
            location_map(values["Latitude"], values["Longitude"]), height=420, key="house-map"
        )
    if result is not None:
        explain_panel.show(values, schema)


def show_field_errors(errors: list[FieldError], slots: dict, general) -> None:
    """Each error under its field; errors about no single field at the top of the form."""
    loose: list[str] = []
    for error in errors:
        name = error.field.rsplit(".", 1)[-1] if error.field else None
        if name in slots:
            slots[name].error(error.message, icon=":material/error:")
        else:
            loose.append(error.message)
    general.error(
        (
            "The API refused these values:\n\n" + "\n".join(f"- {m}" for m in loose)
            if loose
            else "The API refused these values: see the fields marked below."
        ),
        icon=":material/error:",
    )


def checks(schema: SchemaInfo) -> None:
    """The API's rules, as GET /schema states them (the form itself checks nothing)."""
    with st.expander("What the API checks"):
        lines = [
            f"- **{f.name}**: {f.min:g} to {f.max:g} {f.unit} — {f.description}"
            for f in schema.features
        ]
        lines += [f"- {rule.description}" for rule in schema.rules]
        st.markdown("\n".join(lines))


def many_houses(schema: list[FeatureSpec]) -> None:
    """CSV upload → POST /predict/batch in chunks → a table with a download."""
    names = [spec.name for spec in schema]
    st.markdown(
        f"A CSV file with a header row and the columns `{'`, `'.join(names)}` "
        f"(other columns are kept in the output but not sent). "
        f"Up to {batch.MAX_ROWS:,} rows; they are sent {batch.CHUNK:,} at a time."
    )
    upload = st.file_uploader("CSV file", type=["csv"], key="batch-file")
    if upload is None:
        return
    try:
        frame = batch.read_csv(upload.getvalue(), names)
    except batch.BatchInputError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    with api_errors(stop=False, where="batch"), st.spinner(f"Predicting {len(frame):,} rows…"):
        out = batch.predict_frame(client(), frame, names)
        refused = int(out["error"].notna().sum())
        versions = ", ".join(sorted(out["model_version"].dropna().unique()))
        summary = f"{len(out) - refused:,} predicted, {refused:,} refused"
        summary += f" (model version {versions})." if versions else "."
        if refused:
            summary += " The `error` column says why, row by row."
        if refused < len(out):
            st.success(summary)
        else:
            st.warning(summary)  # nothing predicted: not a success
        st.dataframe(
            out,
            hide_index=True,
            column_config={
                "predicted_value": st.column_config.NumberColumn(
                    "predicted value ($)", format="dollar"
                ),
                "interval_low": st.column_config.NumberColumn("low ($)", format="dollar"),
                "interval_high": st.column_config.NumberColumn("high ($)", format="dollar"),
            },
        )
        st.download_button(
            "Download predictions (CSV)",
            out.to_csv(index=False).encode(),
            file_name="predictions.csv",
            mime="text/csv",
            icon=":material/download:",
        )


st.title("Predict a house value")
with api_errors():
    schema = load_schema(client().base_url)
one, many = st.tabs(["One house", "CSV file"])
with one:
    one_house(schema.features)
    checks(schema)
with many:
    many_houses(schema.features)
