"""summary.json: every cell's summary metrics, configuration and status, with the run's provenance.

    {"format": "goreclaim-summary", "version": 1,
     "provenance": <manifest.json>,
     "units": {metric: unit name (harness.define.units.UNITS)},
     "cells": [{"cell_id", "scenario", "status", "configuration": {column: value},
                "outcome": {column: value}, "metrics": {metric: value}}, ...]}

`configuration` holds the cells.csv columns that define a configuration, `outcome` the others
(repeat, exit code, wall time, the kernel's peaks, reason). Cells are in summary.csv's order; keys are
sorted and a missing value (NaN) is null, so the same run always gives the same bytes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from harness.analyse.summary import config_columns
from harness.define.metrics import metric_unit
from harness.present.results import Results

FORMAT_VERSION = 1


def plain(value):
    """A value as JSON has it: NaN/NA → None, numpy scalars → Python numbers, anything else as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return value
    return str(value)


def summary_document(results: Results) -> dict:
    cells = results.cells
    summary = results.summary
    rows = {}
    config = set(config_columns(cells)) if len(cells.columns) else set()
    if "cell_id" in cells.columns:
        for record in cells.to_dict("records"):
            rows[str(record["cell_id"])] = record
    out_cells = []
    for cell_id, metrics in zip(summary.index, summary.to_dict("records"), strict=False):
        row = rows.get(str(cell_id), {})
        out_cells.append({
            "cell_id": str(cell_id),
            "scenario": plain(row.get("scenario")),
            "status": plain(row.get("status")),
            "configuration": {k: plain(v) for k, v in row.items() if k in config and k != "scenario"},
            "outcome": {k: plain(v) for k, v in row.items()
                        if k not in config and k not in ("cell_id", "status")},
            "metrics": {k: plain(v) for k, v in metrics.items()},
        })
    return {
        "format": "goreclaim-summary",
        "version": FORMAT_VERSION,
        "provenance": plain(results.manifest),
        "units": {str(m): metric_unit(str(m)).name for m in summary.columns},
        "cells": out_cells,
    }


class JsonSummaryExporter:
    name = "summary.json"
    file_name = "summary.json"

    def render(self, results: Results) -> bytes:
        text = json.dumps(summary_document(results), sort_keys=True, indent=1, allow_nan=False,
                          ensure_ascii=False)
        return (text + "\n").encode("utf-8")
