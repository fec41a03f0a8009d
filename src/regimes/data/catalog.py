"""Catalog of every series `regimes` can load: its snapshot location and its download source.

Snapshot paths are relative to the data directory (see `regimes.data.sources.resolve_data_dir`);
`README.md` shipped with the data snapshot (`../shared/data`) documents each file in detail. An
application adds its own entries through the `regimes.series` entry-point group
(`regimes.plugins`): `CATALOG` holds the core's entries, then the installed plugins'.

Frequencies: ``frequency`` is what `load_series` serves ("M" monthly, "Q" quarterly, "A" annual by
US federal fiscal year); ``native`` is the publisher's own frequency when it differs (e.g. "D" for a
daily FRED series that the snapshot and the downloader serve as a simple monthly mean).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from regimes import plugins
from regimes.errors import UnknownSeriesError

__all__ = [
    "CATALOG",
    "FRED_MD",
    "FredSource",
    "PinkSheetSource",
    "Series",
    "get_series",
    "pink_sheet",
    "series_ids",
]

FREQUENCIES = ("M", "Q", "A")
NATIVE_FREQUENCIES = ("D", "M", "Q", "A")
# the pandas frequency of period starts on which monthly and quarterly series are served
PERIOD_STARTS = {"M": "MS", "Q": "QS-JAN"}
# How a snapshot file spells its dates (see sources._parse_dates).
DATE_FORMATS = ("iso", "year_month", "mdy", "fiscal_year")


@dataclass(frozen=True)
class FredSource:
    """A FRED series downloadable as fredgraph CSV; daily series are aggregated to monthly means."""

    fred_id: str
    aggregate: str | None = None  # "mean" when the FRED series is daily and served monthly

    def __post_init__(self) -> None:
        """Reject aggregations the downloader does not implement."""
        if self.aggregate not in (None, "mean"):
            raise ValueError(f"FredSource {self.fred_id}: unsupported aggregate {self.aggregate!r}")


@dataclass(frozen=True)
class PinkSheetSource:
    """A column of the World Bank Pink Sheet (sheet "Monthly Prices"), named by its header."""

    header: str  # commodity name in the header row, e.g. "Copper"
    unit: str  # text of the units row below it, e.g. "($/mt)"

    @property
    def column(self) -> str:
        """Header and unit as one label, as in worldbank_pinksheet_monthly_prices.csv."""
        return f"{self.header} {self.unit}"


Source = FredSource | PinkSheetSource | None


@dataclass(frozen=True)
class Series:
    """One catalogued series: meaning, units, frequency, snapshot file and download source."""

    id: str
    description: str
    units: str
    frequency: str  # served by load_series: "M", "Q" or "A" (US fiscal year)
    publisher: str
    file: str  # snapshot file, relative to the data directory
    column: str  # column in that file
    source: Source  # public download source, or None (see `origin`)
    native: str = ""  # publisher's frequency if it differs from `frequency` ("D"); defaults to it
    date_column: str = "date"
    date_format: str = "iso"
    origin: str = ""  # where the data come from when there is no download source; caveats
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        """Validate the codes and default `native` to the served frequency."""
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"series {self.id}: frequency {self.frequency!r} not in {FREQUENCIES}")
        if not self.native:
            object.__setattr__(self, "native", self.frequency)
        if self.native not in NATIVE_FREQUENCIES:
            raise ValueError(
                f"series {self.id}: native {self.native!r} not in {NATIVE_FREQUENCIES}"
            )
        if self.date_format not in DATE_FORMATS:
            raise ValueError(f"series {self.id}: date_format {self.date_format!r} unknown")
        if self.native == "D" and not (
            isinstance(self.source, FredSource) and self.source.aggregate == "mean"
        ):
            raise ValueError(f"series {self.id}: daily series need FredSource(aggregate='mean')")

    @property
    def downloadable(self) -> bool:
        """Whether `regimes data fetch` can download this series from its publisher."""
        return self.source is not None


MONTHLY = "us_macro_monthly.csv"
QUARTERLY = "us_macro_quarterly.csv"
FISCAL = "us_fiscal_annual.csv"
FRED_MD = "original/fredmd_2025-12_vintage.csv"
PINK = "World Bank Commodity Markets (Pink Sheet)"
H15 = "Federal Reserve Board (H.15) via FRED"
H10 = "Federal Reserve Board (H.10) via FRED"
BLS = "US Bureau of Labor Statistics via FRED"
BEA = "US Bureau of Economic Analysis via FRED"
TREASURY = "US Treasury via FRED"
OMB = "OMB / Federal Reserve Bank of St. Louis via FRED"
FREDMD_ORIGIN = "FRED-MD 2025-12 vintage (McCracken & Ng); snapshot only"


def pink_sheet(
    sid: str, header: str, unit: str, column: str, description: str, units: str
) -> Series:
    """Catalog entry for a World Bank Pink Sheet monthly price column (in the monthly file)."""
    return Series(
        sid, description, units, "M", PINK, MONTHLY, column, PinkSheetSource(header, unit)
    )


def _fred_daily(sid: str, column: str, description: str, units: str, publisher: str) -> Series:
    """Catalog entry for a daily FRED series served as its monthly mean."""
    return Series(
        sid, description, units, "M", publisher, MONTHLY, column,
        FredSource(sid, aggregate="mean"), native="D",
    )  # fmt: skip


def _fred(
    sid: str, freq: str, file: str, column: str, description: str, units: str, publisher: str,
    **kw: str,
) -> Series:  # fmt: skip
    """Catalog entry for a FRED series served at its own frequency."""
    if freq == "A":
        kw = {"date_column": "fiscal_year", "date_format": "fiscal_year", **kw}
    return Series(sid, description, units, freq, publisher, file, column, FredSource(sid), **kw)


_ENTRIES: list[Series] = [
    # --- monthly, World Bank Pink Sheet (June 2 2026 edition in the snapshot)
    pink_sheet("SILVER", "Silver", "($/troy oz)", "silver_usd_oz_wb",
               "Silver price, monthly average", "USD per troy oz"),
    pink_sheet("PLATINUM", "Platinum", "($/troy oz)", "platinum_usd_oz_wb",
               "Platinum price, monthly average", "USD per troy oz"),
    pink_sheet("COPPER", "Copper", "($/mt)", "copper_usd_mt_wb",
               "Copper, LME grade A, monthly average", "USD per metric ton"),
    pink_sheet("OIL", "Crude oil, average", "($/bbl)", "crude_oil_avg_usd_bbl_wb",
               "Crude oil, average of Brent, Dubai and WTI", "USD per barrel"),
    # --- monthly means of daily FRED series
    _fred_daily("DFII10", "FII10_from_DFII10",
                "10-year TIPS constant-maturity real yield, monthly mean of daily", "percent", H15),
    _fred_daily("DGS10", "DGS10_mavg",
                "10-year Treasury constant-maturity yield, monthly mean of daily", "percent", H15),
    _fred_daily("T10YIE", "T10YIE_mavg",
                "10-year breakeven inflation (DGS10 - DFII10), monthly mean of daily", "percent",
                "Federal Reserve Bank of St. Louis (FRED), from H.15"),
    _fred_daily("DTWEXBGS", "DTWEXBGS_mavg",
                "Nominal broad trade-weighted dollar index (goods and services), monthly mean",
                "index, Jan 2006=100", H10),
    # --- monthly FRED series
    _fred("GS10", "M", MONTHLY, "GS10", "10-year Treasury constant-maturity yield, monthly",
          "percent", H15),
    _fred("GS1", "M", FRED_MD, "GS1", "1-year Treasury constant-maturity yield, monthly",
          "percent", H15, date_column="sasdate", date_format="mdy",
          origin="snapshot copy from the FRED-MD 2025-12 vintage (to 2025-11); "
                 "fetch gets FRED GS1"),
    _fred("REAINTRATREARAT10Y", "M", MONTHLY, "REAINTRATREARAT10Y",
          "10-year expected real interest rate (Cleveland Fed model)", "percent",
          "Federal Reserve Bank of Cleveland via FRED"),
    _fred("FEDFUNDS", "M", MONTHLY, "FEDFUNDS", "Effective federal funds rate, monthly average",
          "percent", H15),
    _fred("CPIAUCSL", "M", MONTHLY, "CPIAUCSL", "CPI-U all items, seasonally adjusted",
          "index 1982-84=100", BLS),
    _fred("CPILFESL", "M", MONTHLY, "CPILFESL", "Core CPI-U (less food and energy), SA",
          "index 1982-84=100", BLS),
    _fred("UNRATE", "M", MONTHLY, "UNRATE", "Unemployment rate, SA", "percent", BLS),
    _fred("JTSJOL", "M", MONTHLY, "JTSJOL", "JOLTS job openings, total nonfarm, SA",
          "thousands", BLS),
    _fred("MTSDS133FMS", "M", MONTHLY, "MTSDS133FMS",
          "Federal surplus (+) or deficit (-), monthly, NSA", "millions of USD", TREASURY),
    _fred("TWEXBMTH", "M", MONTHLY, "TWEXBMTH",
          "Broad trade-weighted dollar index, goods (discontinued 2019; do not splice with "
          "DTWEXBGS without rescaling)", "index, Jan 1997=100", H10),
    _fred("EXJPUS", "M", MONTHLY, "EXJPUSx_fredmd", "Japanese yen per US dollar, monthly",
          "JPY per USD", H10,
          origin="snapshot copy from FRED-MD (EXJPUSx); fetch gets FRED EXJPUS"),
    _fred("INDPRO", "M", MONTHLY, "INDPRO_fredmd", "Industrial production index",
          "index 2017=100", "Federal Reserve Board (G.17) via FRED",
          origin="snapshot copy from FRED-MD (INDPRO); fetch gets FRED INDPRO"),
    # --- monthly, no per-series public download
    Series("TWEXAFEGSMTHx",
           "Trade-weighted dollar vs advanced foreign economies (FRED-MD spliced series)",
           "index", "M", "Federal Reserve Board via FRED-MD", MONTHLY, "TWEXAFEGSMTHx_fredmd",
           None, origin=FREDMD_ORIGIN),
    Series("SP500", "S&P composite price, monthly average of daily closes (Shiller)", "index",
           "M", "Robert J. Shiller (Yale)", MONTHLY, "SP500_shiller", None,
           origin="Shiller ie_data.xls, Oct 2025 file; snapshot only (S&P data are proprietary)"),
    # --- quarterly (dated first day of the quarter)
    _fred("GDP", "Q", QUARTERLY, "GDP", "Nominal GDP, SAAR", "billions of USD", BEA),
    _fred("GDPC1", "Q", QUARTERLY, "GDPC1", "Real GDP, SAAR", "billions of chained 2017 USD",
          BEA),
    _fred("A091RC1Q027SBEA", "Q", QUARTERLY, "A091RC1Q027SBEA",
          "Federal government current expenditures: interest payments, SAAR",
          "billions of USD", BEA),
    _fred("GFDEBTN", "Q", QUARTERLY, "GFDEBTN", "Federal debt: total public debt",
          "millions of USD", TREASURY),
    _fred("FYGFDPUN", "Q", QUARTERLY, "FYGFDPUN", "Federal debt held by the public",
          "millions of USD", TREASURY),
    _fred("GFDEGDQ188S", "Q", QUARTERLY, "GFDEGDQ188S", "Total public debt as percent of GDP",
          "percent of GDP", OMB),
    # --- annual by US federal fiscal year (indexed at the month the fiscal year ends)
    _fred("FYFSD", "A", FISCAL, "FYFSD", "Federal surplus (+) or deficit (-), fiscal year",
          "millions of USD", "OMB / US Treasury via FRED"),
    _fred("FYOIGDA188S", "A", FISCAL, "FYOIGDA188S", "Federal outlays: interest, fiscal year",
          "percent of GDP", OMB),
    # --- long history, snapshot only
    Series("SHILLER_CPI", "CPI-U (Warren-Pearson before 1913), Shiller's series",
           "index 1982-84=100", "M", "Robert J. Shiller (Yale)", "shiller_ie_data_monthly.csv",
           "CPI", None, origin="Shiller ie_data.xls, Oct 2025 file; snapshot only"),
    Series("SHILLER_GS10", "Long-term interest rate (GS10 from 1953), Shiller's series",
           "percent", "M", "Robert J. Shiller (Yale)", "shiller_ie_data_monthly.csv",
           "GS10_long_rate", None, origin="Shiller ie_data.xls, Oct 2025 file; snapshot only"),
    # --- validation data sets (quarterly)
    Series("HAMILTON_RGNP", "Hamilton (1989) US real GNP growth, 100 x log-difference",
           "percent per quarter", "Q", "Hamilton (1989); BEA",
           "hamilton1989_rgnp_quarterly.csv", "rgnp", None,
           origin="statsmodels Markov-switching test data; validation only", tags=("validation",)),
    Series("HAMILTON_REC", "Recession indicator shipped with Hamilton (1989) data", "0/1", "Q",
           "Hamilton (1989)", "hamilton1989_rgnp_quarterly.csv", "rec", None,
           origin="statsmodels Markov-switching test data; validation only", tags=("validation",)),
    Series("USMACRO_FEDFUNDS", "Federal funds rate, Stata usmacro example (Kim & Nelson)",
           "percent", "Q", "Stata Press usmacro (from FRED)",
           "usmacro_fedfunds_ogap_inf_quarterly.csv", "fedfunds", None,
           origin="statsmodels Markov-switching test data; validation only", tags=("validation",)),
    Series("USMACRO_OGAP", "Output gap, Stata usmacro example", "percent", "Q",
           "Stata Press usmacro (from FRED)", "usmacro_fedfunds_ogap_inf_quarterly.csv", "ogap",
           None, origin="statsmodels Markov-switching test data; validation only",
           tags=("validation",)),
    Series("USMACRO_INF", "Inflation, Stata usmacro example", "percent", "Q",
           "Stata Press usmacro (from FRED)", "usmacro_fedfunds_ogap_inf_quarterly.csv", "inf",
           None, origin="statsmodels Markov-switching test data; validation only",
           tags=("validation",)),
]  # fmt: skip

CATALOG: plugins.Registry[Series] = plugins.Registry(
    "catalog series", plugins.SERIES, Series, lambda s: s.id, _ENTRIES
)


def series_ids() -> list[str]:
    """All catalogued ids in catalog order (the core's, then the plugins'), for listings and
    checks."""
    return list(CATALOG)


def get_series(series_id: str) -> Series:
    """Look up a series by id, raising UnknownSeriesError with close matches for typos."""
    try:
        return CATALOG[series_id]
    except (KeyError, TypeError):
        pass
    upper = {k.upper(): k for k in CATALOG}
    if isinstance(series_id, str) and series_id.upper() in upper:
        close = [upper[series_id.upper()]]
    else:
        close = difflib.get_close_matches(str(series_id).upper(), list(upper), n=3, cutoff=0.6)
        close = [upper[c] for c in close]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownSeriesError(
        f"unknown series id {series_id!r}.{hint} Run `regimes data list` to see all "
        f"{len(CATALOG)} catalogued series."
    )
