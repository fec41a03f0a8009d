"""The gold study's part of its page (the `regimes.studies` entry point of this package, named by
`application = "gold"` in experiments/gold/study.toml): the descriptive analyses of the data and
two panels drawn from them, the real gold price since 1871 beside the federal debt ratio and the
debt divergence risk index beside gold.

A new panel is one function of the page context here, added to `APPLICATION.panels` and named
in the study.toml (`[page] panels` for the figures, `[answer] panels` beside the answer).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from regimes.factors import FACTORS
from regimes.figures import memo_style
from regimes.study.application import Application
from regimes.study.panels import PageContext, PanelOutput
from regimes_gold import descriptive


def _twin_legend(ax: Any, ax2: Any) -> None:
    """One legend for a plot with a second y axis, holding both axes' lines."""
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, frameon=False)


def real_gold_price(ctx: PageContext) -> PanelOutput:
    """The real gold price index since 1871 (log scale) with the federal debt ratio from 1970."""
    s: descriptive.Series = ctx.data()
    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(
            s.real_gold.index,
            s.real_gold.values,
            color="C1",
            lw=1.2,
            label="real gold price (1930 = 100)",
        )
        ax.set_yscale("log")
        ax.axhline(100, color="0.5", lw=0.6)
        ax.axvline(
            pd.Timestamp("1971-08-01"),
            color="0.4",
            ls="--",
            lw=0.8,
            label="end of Bretton Woods (1971-08)",
        )
        ax.set_ylabel("index, log scale")
        ax2 = ax.twinx()
        ax2.plot(
            s.debt_gdp.index,
            s.debt_gdp.values,
            color="C0",
            lw=1,
            label="federal debt held by the public, % of GDP",
        )
        ax2.set_ylabel("% of GDP")
        _twin_legend(ax, ax2)
        ax.set_xlabel("month")
        fig.tight_layout()
    caption = (
        "Real gold price index (gold / CPI, 1930 = 100, Jastram's method), 1871 to the latest "
        "month, with the federal debt ratio from 1970."
    )
    return PanelOutput(caption, fig)


def ddri_gold(ctx: PageContext) -> PanelOutput:
    """The debt divergence risk index against gold (log scale)."""
    s: descriptive.Series = ctx.data()
    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.plot(s.ddri.index, s.ddri.values, color="C2", lw=1.2, label="DDRI, % of GDP per year")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_ylabel("DDRI")
        ax2 = ax.twinx()
        g = s.gold[s.gold.index >= s.ddri.index[0]]
        ax2.plot(g.index, g.values, color="C1", lw=1, label="gold, USD/oz (log)")
        ax2.set_yscale("log")
        _twin_legend(ax, ax2)
        ax.set_xlabel("month")
        fig.tight_layout()
    caption = (
        "Debt divergence risk index (DDRI = d(r − g) − pb, % of GDP per year) against gold "
        "(log scale)."
    )
    return PanelOutput(caption, fig)


def fiscal_signals(ctx: PageContext) -> PanelOutput:
    """The monthly fiscal-risk signals since 2015 beside the quarterly DDRI, each standardised
    over 2015 onward (sd units) so their moves compare on one axis."""
    s: descriptive.Series = ctx.data()
    since = pd.Timestamp("2015-01-01")
    series = {"ddri": s.ddri, **s.fiscal}
    with memo_style() as plt:
        fig, ax = plt.subplots(figsize=(10, 4))
        for i, (name, values) in enumerate(series.items()):
            v = values[values.index >= since]
            if len(v) < 2:
                continue
            z = (v - v.mean()) / (v.std() or 1.0)
            style = {"lw": 2.0, "color": "0.2"} if name == "ddri" else {"lw": 1.1, "color": f"C{i}"}
            ax.plot(z.index, z.values, label=f"{name} ({FACTORS[name].units})", **style)
        ax.axhline(0, color="0.5", lw=0.6)
        ax.axvline(pd.Timestamp("2022-01-01"), color="C3", ls="--", lw=0.8, label="2022-01")
        ax.set_ylabel("sd units since 2015")
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncol=2)
        fig.tight_layout()
    caption = (
        "Fiscal-risk signals since 2015, each in sd units over the period: the quarterly DDRI "
        "(dark; its r is the effective rate on the stock of debt, which lags market rates) beside "
        "monthly signals a market can price each month: DDRI with the 10-year yield as r and the "
        "12-month Treasury balance (ddri_market), the 12-month deficit in % of GDP, r − g at the "
        "10-year yield, and the bond–FX divergence (yields up while the dollar falls)."
    )
    return PanelOutput(caption, fig)


APPLICATION = Application(
    name="gold",
    description="the gold anchor study: the real gold price, gold's tops, debt and the DDRI",
    load=descriptive.load,
    quantities=descriptive.EXTRACTORS,
    panels={
        "real_gold_price": real_gold_price,
        "ddri_gold": ddri_gold,
        "fiscal_signals": fiscal_signals,
    },
)
