"""The gold price series of the data snapshot, as catalog entries (the `regimes.series` entry
point of this package): the World Bank's monthly average since 1960 and the long history since
1833 that the real gold price index needs."""

from __future__ import annotations

from regimes.data.catalog import Series, pink_sheet

SERIES: tuple[Series, ...] = (
    pink_sheet(
        "GOLD",
        "Gold",
        "($/troy oz)",
        "gold_usd_oz_wb",
        "Gold price, monthly average (London PM fix; spot average from June 2025)",
        "USD per troy oz",
    ),
    Series(
        "GOLD_LONG",
        "Gold price 1833+: annual average repeated monthly before 1960, World Bank after",
        "USD per troy oz",
        "M",
        "T. Green / NMA (pre-1960); World Bank (1960+); datahub.io",
        "gold_monthly_1833_datahub.csv",
        "Price",
        None,
        date_column="Date",
        date_format="year_month",
        origin="datahub.io gold-prices compilation; snapshot only",
    ),
)
