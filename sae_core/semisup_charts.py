"""Altair charts of a semi-supervised comparison, built from plain rows, and their PNGs.

Every chart function takes lists of dicts as made by sae_core.semisup (summary rows,
result rows, per-class and confusion tables, curves) and returns an Altair chart, so the
app can show it and the CLI can save it. PNG export uses vl-convert-python, which
renders offline.
"""

from __future__ import annotations

import logging
from pathlib import Path

import altair as alt
import pandas as pd

from .semisup import (
    ARMS,
    ComparisonResult,
    confusion_table,
    curve_tables,
    per_class_table,
)

logger = logging.getLogger(__name__)

ARM_COLORS = alt.Scale(domain=list(ARMS), range=["#1b9e77", "#d95f02", "#7570b3"])
MAX_CURVE_POINTS = 100  # per arm and seed, to keep the charts light
PRETRAIN_TITLES = {"labelled": "the labelled digits only", "all": "all digits"}


def _arm_color(legend: bool = True) -> alt.Color:
    return alt.Color("arm:N", scale=ARM_COLORS, sort=list(ARMS),
                     legend=alt.Legend(title="arm", orient="bottom", symbolOpacity=1) if legend else None)


def _at_budget(rows: list[dict], budget: int) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame[frame["labels_per_class"] == budget]


def _clipped(frame: pd.DataFrame, low: float, high: float) -> pd.DataFrame:
    """Interval bounds clipped to the range the quantity can take, for drawing only.

    A t interval from few seeds can reach past 0 or 1; the tooltips keep the raw bounds
    in ci_low and ci_high.
    """
    frame = frame.copy()
    frame["shown_low"] = frame["ci_low"].astype(float).clip(low, high)
    frame["shown_high"] = frame["ci_high"].astype(float).clip(low, high)
    return frame


def arms_chart(summary_arms: list[dict], rows: list[dict], labels_per_class: int) -> alt.Chart:
    """Accuracy per arm at one budget: each seed as a dot, the mean and its interval."""
    summary = _clipped(_at_budget(summary_arms, labels_per_class), 0.0, 1.0)
    seeds = _at_budget(rows, labels_per_class)
    n_eval = int(seeds["n_eval"].iloc[0]) if len(seeds) else 0
    axis = alt.X("accuracy:Q", title="accuracy on the unlabelled remainder",
                 scale=alt.Scale(zero=False, nice=True), axis=alt.Axis(format=".1%"))
    arm = alt.Y("arm:N", sort=list(ARMS), title=None, axis=alt.Axis(labelLimit=240))

    per_seed = alt.Chart(seeds).mark_circle(size=45, opacity=0.45).encode(
        x=axis, y=arm, color=_arm_color(legend=False),
        yOffset=alt.YOffset("seed:N"),
        tooltip=["arm", "seed", alt.Tooltip("accuracy:Q", format=".2%"), "n_eval"])
    interval = alt.Chart(summary).mark_rule(strokeWidth=3, color="black").encode(
        x="shown_low:Q", x2="shown_high:Q", y=arm)
    mean = alt.Chart(summary).mark_tick(thickness=3, size=26, color="black").encode(
        x=alt.X("mean:Q"), y=arm,
        tooltip=["arm", alt.Tooltip("mean:Q", format=".2%"), alt.Tooltip("ci_low:Q", format=".2%"),
                 alt.Tooltip("ci_high:Q", format=".2%"), "n_seeds"])
    n_seeds = int(summary["n_seeds"].iloc[0]) if len(summary) else 0
    return (per_seed + interval + mean).properties(
        width=380, height=150,
        title=alt.Title(f"Accuracy, {labels_per_class} labels per class",
                        subtitle=f"dots: {n_seeds} seeds; bar: mean and 95% t interval; "
                                 f"{n_eval:,} digits evaluated"),
    )


def difference_chart(summary_differences: list[dict], rows: list[dict],
                     labels_per_class: int) -> alt.Chart:
    """Paired differences between arms (same seed), in accuracy points, with intervals."""
    summary = _clipped(_at_budget(summary_differences, labels_per_class), -1.0, 1.0)
    summary["pair"] = summary["minuend"] + " − " + summary["subtrahend"]
    by_seed = _at_budget(rows, labels_per_class).pivot(index="seed", columns="arm", values="accuracy")
    deltas = pd.DataFrame([
        {"pair": f"{a} − {b}", "seed": seed, "difference": by_seed.loc[seed, a] - by_seed.loc[seed, b]}
        for a, b in zip(summary["minuend"], summary["subtrahend"]) for seed in by_seed.index
    ])
    pair = alt.Y("pair:N", title=None, sort=list(summary["pair"]), axis=alt.Axis(labelLimit=320))
    axis = alt.X("difference:Q", title="paired difference in accuracy", axis=alt.Axis(format="+.1%"))

    zero = alt.Chart(pd.DataFrame({"difference": [0.0]})).mark_rule(color="gray", strokeDash=[4, 3]).encode(x=axis)
    per_seed = alt.Chart(deltas).mark_circle(size=45, opacity=0.45, color="#555").encode(
        x=axis, y=pair, yOffset=alt.YOffset("seed:N"),
        tooltip=["pair", "seed", alt.Tooltip("difference:Q", format="+.2%")])
    interval = alt.Chart(summary).mark_rule(strokeWidth=3, color="black").encode(
        x="shown_low:Q", x2="shown_high:Q", y=pair)
    mean = alt.Chart(summary).mark_tick(thickness=3, size=26, color="black").encode(
        x=alt.X("mean:Q"), y=pair,
        tooltip=["pair", alt.Tooltip("mean:Q", format="+.2%"), alt.Tooltip("ci_low:Q", format="+.2%"),
                 alt.Tooltip("ci_high:Q", format="+.2%"), "wins", "losses", "ties"])
    return (zero + per_seed + interval + mean).properties(
        width=280, height=45 * len(summary),
        title=alt.Title("Paired differences", subtitle="same seed, same labelled set; mean and 95% t interval"),
    )


def comparison_chart(result: ComparisonResult) -> alt.VConcatChart:
    """Build the headline chart: arms with intervals above the paired differences.

    The two parts are stacked, because side by side they are wider than the app's
    main column.
    """
    budget = result.settings.labels_per_class
    pretrained_on = PRETRAIN_TITLES[result.settings.pretrain_on]
    return alt.vconcat(
        arms_chart(result.summary["arms"], result.rows, budget),
        difference_chart(result.summary["differences"], result.rows, budget),
        spacing=30,
    ).resolve_scale(x="independent", y="independent").properties(
        title=alt.Title(f"Autoencoder pretrained on {pretrained_on}", anchor="start", fontSize=15))


def sweep_chart(summary_arms: list[dict], pretrain_on: str | None = None) -> alt.LayerChart:
    """Mean accuracy against labels per class, one line per arm, 95% interval bands."""
    frame = _clipped(pd.DataFrame(summary_arms), 0.0, 1.0)
    budgets = sorted(frame["labels_per_class"].unique().tolist())
    x = alt.X("labels_per_class:Q", title="labels per class (log scale)",
              scale=alt.Scale(type="log", domain=[budgets[0], budgets[-1]], nice=False),
              axis=alt.Axis(values=budgets, format="d"))
    band = alt.Chart(frame).mark_area(opacity=0.18).encode(
        x=x, y="shown_low:Q", y2="shown_high:Q", color=_arm_color())
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title="accuracy on the unlabelled remainder",
                      scale=alt.Scale(zero=False), axis=alt.Axis(format=".0%")),
        color=_arm_color(),
        tooltip=["arm", "labels_per_class", alt.Tooltip("mean:Q", format=".2%"),
                 alt.Tooltip("ci_low:Q", format=".2%"), alt.Tooltip("ci_high:Q", format=".2%"),
                 "n_seeds"])
    pretrained = f"autoencoder pretrained on {PRETRAIN_TITLES[pretrain_on]}; " if pretrain_on else ""
    return (band + line).properties(
        width=460, height=300,
        title=alt.Title("Accuracy against the label budget",
                        subtitle=f"{pretrained}mean over seeds; band: 95% t interval"))


def per_class_chart(per_class_rows: list[dict]) -> alt.Chart:
    """Accuracy on each digit of the remainder, per arm, pooled over seeds."""
    frame = pd.DataFrame(per_class_rows)
    return alt.Chart(frame).mark_point(filled=True, size=70, opacity=0.9).encode(
        x=alt.X("digit:O", title="digit", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("arm:N", sort=list(ARMS)),
        y=alt.Y("accuracy:Q", title="accuracy on that digit", scale=alt.Scale(zero=False),
                axis=alt.Axis(format=".0%")),
        color=_arm_color(),
        tooltip=["arm", "digit", alt.Tooltip("accuracy:Q", format=".2%"), "n_eval"],
    ).properties(width=520, height=240,
                 title=alt.Title("Accuracy per digit", subtitle="pooled over seeds"))


def confusion_chart(confusion_rows: list[dict]) -> alt.FacetChart:
    """Draw one confusion matrix per arm, with counts summed over seeds.

    Off-diagonal cells are coloured by their share of the true digit. The diagonal is
    grey, because its share near 1 would wash out the colour scale of the errors.
    """
    frame = pd.DataFrame(confusion_rows)
    frame["error_rate"] = frame["rate"].where(frame["true"] != frame["predicted"])
    base = alt.Chart().encode(
        x=alt.X("predicted:O", title="predicted digit", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("true:O", title="true digit"),
        tooltip=["arm", "true", "predicted", "count", alt.Tooltip("rate:Q", format=".1%")],
    )
    correct = base.mark_rect(color="#d9d9d9").transform_filter("datum.true == datum.predicted")
    errors = base.mark_rect().transform_filter("datum.true != datum.predicted").encode(
        color=alt.Color("error_rate:Q", title="share of true digit",
                        scale=alt.Scale(scheme="orangered", domainMin=0),
                        legend=alt.Legend(format=".0%")))
    labels = base.mark_text(fontSize=8).encode(text="count:Q")
    return alt.layer(correct, errors, labels, data=frame).properties(width=230, height=230).facet(
        column=alt.Column("arm:N", sort=list(ARMS), title=None),
    ).properties(title=alt.Title("Confusion matrices",
                                 subtitle="counts summed over seeds; grey: correct"))


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep at most MAX_CURVE_POINTS evenly spaced iterations per arm and seed, and the last."""
    if frame.empty:
        return frame
    last = frame.groupby(["arm", "seed"])["iteration"].transform("max")
    step = max(1, int(frame["iteration"].max()) // MAX_CURVE_POINTS + 1)
    return frame[(frame["iteration"] % step == 0) | (frame["iteration"] == last)]


def curves_chart(loss_rows: list[dict], accuracy_rows: list[dict]) -> alt.HConcatChart:
    """Training loss (log scale) and remainder accuracy against L-BFGS iteration."""
    losses = _thin(pd.DataFrame(loss_rows))
    accuracies = pd.DataFrame(accuracy_rows)
    # The axis starts at 0, so the starting points (near chance, 10%, for random
    # weights) are drawn at their true height.
    iteration = alt.X("iteration:Q", title="L-BFGS iteration")
    loss = alt.Chart(losses).mark_line(opacity=0.7, strokeWidth=1.2).encode(
        x=iteration, y=alt.Y("loss:Q", title="training objective (log scale)", scale=alt.Scale(type="log")),
        color=_arm_color(), detail="seed:N",
        tooltip=["arm", "seed", "iteration", alt.Tooltip("loss:Q", format=".4g")],
    ).properties(width=360, height=240, title="Training objective")
    accuracy = alt.Chart(accuracies).mark_line(opacity=0.7, strokeWidth=1.2).encode(
        x=iteration, y=alt.Y("accuracy:Q", title="accuracy on the unlabelled remainder",
                             scale=alt.Scale(domain=[0.0, 1.0]), axis=alt.Axis(format=".0%")),
        color=_arm_color(), detail="seed:N",
        tooltip=["arm", "seed", "iteration", alt.Tooltip("accuracy:Q", format=".2%")],
    ).properties(width=360, height=240,
                 title=alt.Title("Remainder accuracy while training", subtitle="monitored only, never used to stop"))
    return alt.hconcat(loss, accuracy, spacing=30)


def result_charts(result: ComparisonResult) -> dict[str, alt.TopLevelMixin]:
    """Build every chart of a result, keyed by file stem; "sweep" only when several budgets ran.

    Each chart states autosize "pad" (Vega-Lite's default) explicitly, so every chart is
    drawn at its own width and height, as in the PNGs. Without it, st.altair_chart
    fits single views into their stated height including titles and legends, which
    leaves the per-digit chart a few pixels tall.
    """
    losses, accuracies = curve_tables(result)
    charts = {"comparison": comparison_chart(result)}
    if len(result.settings.budgets) > 1:
        charts["sweep"] = sweep_chart(result.summary["arms"], result.settings.pretrain_on)
    charts["per_class"] = per_class_chart(per_class_table(result))
    charts["confusion"] = confusion_chart(confusion_table(result))
    charts["curves"] = curves_chart(losses, accuracies)
    padded = alt.AutoSizeParams(type="pad", contains="padding")
    return {name: chart.properties(autosize=padded) for name, chart in charts.items()}


def save_png(chart: alt.TopLevelMixin, path: str | Path, scale: float = 2.0) -> Path:
    """Render a chart to PNG offline; raises RuntimeError when vl-convert is missing."""
    try:
        import vl_convert  # noqa: F401
    except ImportError as error:
        raise RuntimeError(
            "saving charts as PNG needs vl-convert-python; install it with "
            "'pip install -r requirements.txt'") from error
    path = Path(path)
    chart.save(str(path), format="png", scale_factor=scale)
    return path


def save_charts(result: ComparisonResult, directory: str | Path) -> list[Path]:
    """Write every chart of result_charts as DIRECTORY/<name>.png; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [save_png(chart, directory / f"{name}.png") for name, chart in result_charts(result).items()]
    logger.info("wrote %d charts to %s", len(paths), directory)
    return paths
