"""Self-contained HTML reports of runs (`regimes report`): one page per run, or a comparison."""

from __future__ import annotations

from regimes.report.write import COMPARE, REPORT, ReportError, write_compare_report, write_report

__all__ = ["COMPARE", "REPORT", "ReportError", "write_compare_report", "write_report"]
