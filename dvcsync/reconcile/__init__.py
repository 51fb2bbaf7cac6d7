"""Reconciliation (đối soát): province ⋈ adapter state ⋈ portal ⋈ payment statement, the
mismatch report in HTML, XLSX, CSV and JSON, and the repairs the adapter can make itself."""

from .categories import CATEGORIES, KEYS, Category, category
from .period import Period, parse_day
from .repair import NotRepairable, RepairOutcome, RepairResult, repair, repairable
from .report import JSON_NAME, Item, Report
from .run import ReconcileOptions, ReconcileResult, latest_report, reconcile, write_report

__all__ = [
    "CATEGORIES",
    "JSON_NAME",
    "KEYS",
    "Category",
    "Item",
    "NotRepairable",
    "Period",
    "ReconcileOptions",
    "ReconcileResult",
    "RepairOutcome",
    "RepairResult",
    "Report",
    "category",
    "latest_report",
    "parse_day",
    "reconcile",
    "repair",
    "repairable",
    "write_report",
]
