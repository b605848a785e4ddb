"""Run directory: per-cell incremental writes, the manifest, merging, and loading back.

Layout of `results/<run_id>/` (docs/ARCHITECTURE.md, "Store"):

    manifest.json        provenance; "complete" is false until finish(True)
    cells.csv            one row per finished cell, rewritten atomically after each cell
    cells/0001-<id>/     samples.parquet, events.parquet, cell.json (and a program's stdout.txt,
                         stderr.txt) — written before the next cell starts
    samples.parquet      all cells merged by finish()
    events.parquet       all cells merged by finish()

Every file is written to a temporary name and renamed into place, so an interrupted run leaves either the
old or the new version, never half a file. A run directory is never reused or overwritten.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.define.units import format_size
from harness.run.backends.base import RunResult

# Version 2: cells.csv keeps GOMEMLIMIT as written ("90%") in `gomemlimit` and the resolved bytes in
# `gomemlimit_bytes`; version 1 held only the bytes, in `gomemlimit`. load_run upgrades 1 to 2.
MANIFEST_VERSION = 2
KNOWN_VERSIONS = (1, 2)

SAMPLE_COLUMNS = ("cell_id", "t_s", "source", "metric", "value")
EVENT_COLUMNS = ("cell_id", "t_s", "kind", "name", "value", "detail")

SAMPLES_SCHEMA = pa.schema([
    ("cell_id", pa.string()), ("t_s", pa.float64()), ("source", pa.string()),
    ("metric", pa.string()), ("value", pa.float64()),
])
EVENTS_SCHEMA = pa.schema([
    ("cell_id", pa.string()), ("t_s", pa.float64()), ("kind", pa.string()),
    ("name", pa.string()), ("value", pa.float64()), ("detail", pa.string()),
])

# cells.csv columns in order; the matrix axes are inserted after "workload".
CELL_HEAD = ("cell_id", "scenario", "workload")
CELL_TAIL = ("gogc", "madvdontneed", "gomemlimit", "gomemlimit_bytes", "memory_limit_bytes", "cpus", "go_version",
             "backend", "repeat", "status", "exit_code", "oom_killed", "wall_s", "peak_rss_bytes", "peak_cgroup_bytes",
             "reason", "args", "host", "kernel", "cgroup_version", "accel", "cpuset")
# Where each cell ran (harness.run.placement): new in runs made since clusters; older runs have none.
# accel: native on a host, kvm or tcg in a guest kernel (harness.run.guest); thp: the THP mode it ran with.
PLACEMENT_COLUMNS = ("host", "kernel", "cgroup_version", "thp", "khugepaged_ms", "accel", "cpuset")
# dtypes on load; every other column (scenario, axes, knobs) is a string, "" when unset.
CELL_DTYPES = {
    "memory_limit_bytes": "Int64", "gomemlimit_bytes": "Int64", "memory_high_bytes": "Int64", "cpus": "float64",
    "repeat": "int64",
    "exit_code": "Int64",
    "oom_killed": "bool", "wall_s": "float64", "peak_rss_bytes": "Int64", "peak_cgroup_bytes": "Int64",
}


class StoreError(RuntimeError):
    """A run directory that cannot be written or read; one line naming the file and what is wrong."""


# ---------------------------------------------------------------------------------------------- conversion

def _blank(value: object) -> str:
    return "" if value is None else str(value)


def cells_row(result: RunResult) -> dict[str, Any]:
    """The cells.csv row of one result (values as written: numbers, bools, "" for unset)."""
    cell = result.cell
    row: dict[str, Any] = {"cell_id": cell.cell_id, "scenario": cell.scenario, "workload": cell.workload}
    for axis, value in cell.axes:
        row[axis] = str(value)
    # The cell's own knobs win over an axis of the same name: they are what actually ran.
    row.update({
        "gogc": _blank(cell.gogc),
        "madvdontneed": _blank(cell.madvdontneed),
        "gomemlimit": cell.gomemlimit_written,
        "gomemlimit_bytes": cell.gomemlimit_bytes,
        "memory_limit_bytes": cell.memory_limit_bytes,
        "cpus": cell.cpus,
        "go_version": cell.go_version,
        "backend": cell.backend,
        "repeat": cell.repeat,
        "status": result.status,
        "exit_code": result.exit_code,
        "oom_killed": bool(result.oom_killed),
        "wall_s": float(result.wall_s),
        "peak_rss_bytes": result.peak_rss_bytes,
        "peak_cgroup_bytes": result.peak_cgroup_bytes,
        "reason": result.reason,
        "args": " ".join(cell.args),
    })
    # Further columns its axes resolved (memory_high_bytes), after those written above by name.
    row.update({name: value for name, value in cell.columns if name not in row})
    # Where it ran; a cell that never ran keeps the kernel its `kernel` axis asked for.
    row.update({name: _blank(result.placement.get(name)) for name in PLACEMENT_COLUMNS
                if result.placement.get(name) is not None or name not in row})
    return row


def _samples_table(result: RunResult) -> pa.Table:
    t0, cid = result.t0_ns, result.cell.cell_id
    rows = result.samples
    return pa.table({
        "cell_id": pa.array([cid] * len(rows), pa.string()),
        "t_s": pa.array([(r[0] - t0) / 1e9 for r in rows], pa.float64()),
        "source": pa.array([r[1] for r in rows], pa.string()),
        "metric": pa.array([r[2] for r in rows], pa.string()),
        "value": pa.array([float(r[3]) for r in rows], pa.float64()),
    }, schema=SAMPLES_SCHEMA)


def _events_table(result: RunResult) -> pa.Table:
    t0, cid = result.t0_ns, result.cell.cell_id
    rows = result.events
    return pa.table({
        "cell_id": pa.array([cid] * len(rows), pa.string()),
        "t_s": pa.array([(r[0] - t0) / 1e9 for r in rows], pa.float64()),
        "kind": pa.array([r[1] for r in rows], pa.string()),
        "name": pa.array([str(r[2]) for r in rows], pa.string()),
        "value": pa.array([float("nan") if r[3] is None else float(r[3]) for r in rows], pa.float64()),
        "detail": pa.array([r[4] if isinstance(r[4], str) else json.dumps(r[4]) for r in rows], pa.string()),
    }, schema=EVENTS_SCHEMA)


def _cells_columns(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """cells.csv rows → DataFrame in cells.csv's column order, values as they are."""
    columns: list[str] = list(CELL_HEAD)
    for row in rows:
        for key in row:
            if key not in columns and key not in CELL_TAIL:
                columns.append(key)
    columns += CELL_TAIL
    return pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)


def _cells_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """cells.csv rows → DataFrame with the load dtypes (the same whether fresh or read back)."""
    return _apply_cell_dtypes(_cells_columns(rows))


def _is_blank(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) \
        or str(value).strip().lower() in ("", "nan", "<na>", "none")


def _apply_cell_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        dtype = CELL_DTYPES.get(column)
        series = frame[column]
        if dtype is None:
            frame[column] = series.map(_blank).astype(object)
        elif dtype == "bool":
            frame[column] = series.map(lambda v: str(v).strip().lower() in ("true", "1")).astype(bool)
        else:
            numeric = pd.to_numeric(series.replace("", None), errors="coerce")
            bad = numeric.isna() & ~series.map(_is_blank)
            if bad.any() or (dtype == "int64" and numeric.isna().any()):
                shown = series[bad | numeric.isna()].iloc[0]
                raise ValueError(f"column {column!r} holds {_blank(shown)!r}, not a number")
            frame[column] = numeric.astype("float64").round().astype(pd.api.types.pandas_dtype(dtype)) \
                if dtype in ("Int64", "int64") else numeric.astype(pd.api.types.pandas_dtype(dtype))
    return frame


# Columns of few distinct values, loaded as pandas categoricals: a 100 Hz run has millions of rows,
# and comparing or grouping small integer codes is what keeps analysis and figures fast and small.
CATEGORICAL_COLUMNS = ("cell_id", "source", "metric", "kind", "name")



def _samples_frame(table: pa.Table) -> pd.DataFrame:
    """A samples or events table as a DataFrame: CATEGORICAL_COLUMNS as categoricals with sorted
    categories (so grouping orders them as it would strings), `detail` as Python strings."""
    for column in CATEGORICAL_COLUMNS:
        if column in table.column_names and not pa.types.is_dictionary(table.schema.field(column).type):
            i = table.column_names.index(column)
            # Encoded in Arrow, before conversion: no Python string is made per row.
            table = table.set_column(i, column, table.column(i).cast(pa.string()).dictionary_encode())
    # Column by column, each Arrow buffer freed once converted: the peak is one copy, not two.
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table

    for column in CATEGORICAL_COLUMNS:
        if column in frame.columns:
            values = frame[column].cat
            frame[column] = values.set_categories(sorted(str(c) for c in values.categories))
    if "detail" in frame.columns and not pd.api.types.is_object_dtype(frame["detail"]):
        frame["detail"] = frame["detail"].astype(str).astype(object)
    return pd.DataFrame(frame)


def result_frames(result: RunResult) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(cells row, samples, events) of one result, exactly as save_cell writes and load_run reads them."""
    return (_cells_frame([cells_row(result)]), _samples_frame(_samples_table(result)),
            _samples_frame(_events_table(result)))


# ---------------------------------------------------------------------------------------------- writing

def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_json(path: Path, obj: object) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _atomic_write_parquet(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _safe_id(cell_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,-]+", "_", cell_id).strip("_")[:120] or "cell"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class RunStore:
    """Writes one run directory. Create with RunStore.create(); save_cell() per cell; finish() at the end."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.manifest = dict(manifest)
        self._rows: list[dict[str, Any]] = []
        self._next = 1  # the number of the next cell directory

    @classmethod
    def create(cls, results_dir: Path, manifest: dict[str, Any], run_id: str | None = None) -> RunStore:
        results_dir = Path(results_dir)
        run_id = run_id or new_run_id()
        if not run_id or "/" in run_id or run_id in (".", ".."):
            raise StoreError(f"run id must be one path component, got {run_id!r}")
        try:
            results_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{results_dir}: cannot create the results directory: {_why(e)}") from None
        run_dir = results_dir / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise StoreError(f"{run_dir} already exists: a run directory is never reused; "
                             f"choose another run id or move the old run away") from None
        except OSError as e:
            raise StoreError(f"{results_dir}: cannot write a run directory in it: {_why(e)}") from None
        store = cls(run_dir, {**manifest, "run_id": run_id, "manifest_version": MANIFEST_VERSION,
                              "complete": False})
        try:
            (run_dir / "cells").mkdir()
            _atomic_write_json(run_dir / "manifest.json", store.manifest)
        except OSError as e:
            raise StoreError(f"{run_dir}: cannot write the run directory: {_why(e)}") from None
        return store

    @classmethod
    def reopen(cls, run_dir: Path) -> RunStore:
        """Continue writing a run directory (goreclaim run|advise --resume): the cells that finished stay,
        a cell cut short is removed (it runs again whole), new ones follow."""
        run_dir = Path(run_dir)
        manifest_path = run_dir / "manifest.json"
        if not manifest_path.exists():
            raise StoreError(f"{manifest_path}: missing; {run_dir} is not a goreclaim run directory")
        manifest = _read_json(manifest_path)
        if manifest_version(manifest, manifest_path) != MANIFEST_VERSION:
            raise StoreError(f"{manifest_path}: format {manifest.get('manifest_version', 1)}; only a run in the "
                             f"current format ({MANIFEST_VERSION}) can be continued")
        # A cell cut short is run again whole: its partial samples would merge with the new ones.
        for d in _cut_short(run_dir):
            shutil.rmtree(d)
        store = cls(run_dir, {**manifest, "complete": False})
        store._rows = _cells_from_cell_files(run_dir)
        store._next = max((int(d.name.split("-", 1)[0]) for d in _cell_dirs(run_dir)
                           if d.name.split("-", 1)[0].isdigit()), default=0) + 1
        store._write_cells_csv()  # without the cells just removed
        # Merged by an earlier finish(): stale now (finish merges again); readers fall back to the cells.
        for name in ("samples.parquet", "events.parquet"):
            (run_dir / name).unlink(missing_ok=True)
        _atomic_write_json(run_dir / "manifest.json", store.manifest)  # no longer complete, nor merged
        return store

    def finished(self) -> dict[str, str]:
        """cell_id → status of every cell saved that ran to an outcome (not interrupted)."""
        return {str(row["cell_id"]): str(row["status"]) for row in self._rows if row.get("status") != "interrupted"}

    def update_manifest(self, extra: dict[str, Any]) -> None:
        """Add keys to manifest.json now, so a crash or Ctrl-C keeps them."""
        self.manifest.update(extra)
        _atomic_write_json(self.run_dir / "manifest.json", self.manifest)

    def save_cell(self, result: RunResult) -> Path:
        """Write one finished cell to cells/<n>-<id>/ and rewrite cells.csv; returns the cell directory."""
        n = max(len(self._rows) + 1, self._next)
        self._next = n + 1
        final = self.run_dir / "cells" / f"{n:04d}-{_safe_id(result.cell.cell_id)}"
        tmp = final.with_name(f".{final.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        row = cells_row(result)
        pq.write_table(_samples_table(result), tmp / "samples.parquet", compression="zstd")
        pq.write_table(_events_table(result), tmp / "events.parquet", compression="zstd")
        cell_json = {"n": n, "row": row, "stderr_tail": result.stderr_tail,
                     "sampler_stats": result.sampler_stats, "t0_ns": result.t0_ns}
        (tmp / "cell.json").write_text(json.dumps(cell_json, indent=2, sort_keys=True, default=str) + "\n")
        for stream, text in result.output.items():  # a program's own output, whole
            (tmp / f"{stream}.txt").write_text(text, encoding="utf-8")
        os.replace(tmp, final)  # the cell appears whole or not at all
        self._rows.append(row)
        self._write_cells_csv()
        return final

    def _write_cells_csv(self) -> None:
        frame = _cells_frame(self._rows)
        _atomic_write_bytes(self.run_dir / "cells.csv", frame.to_csv(index=False).encode())

    def finish(self, complete: bool, extra_manifest: dict[str, Any] | None = None) -> Path:
        """Merge per-cell files into the top-level Parquet files; mark the manifest. Safe to call twice."""
        cell_dirs = _cell_dirs(self.run_dir)
        for name, schema in (("samples.parquet", SAMPLES_SCHEMA), ("events.parquet", EVENTS_SCHEMA)):
            tables = [_read_parquet(d / name, schema) for d in cell_dirs if (d / name).exists()]
            merged = pa.concat_tables(tables) if tables else schema.empty_table()
            _atomic_write_parquet(self.run_dir / name, merged)
        self.manifest.update(extra_manifest or {})
        self.manifest.update(complete=bool(complete), n_cells=len(cell_dirs),
                             finished_utc=datetime.now(UTC).isoformat(timespec="seconds"))
        _atomic_write_json(self.run_dir / "manifest.json", self.manifest)
        return self.run_dir


def _cut_short(run_dir: Path) -> list[Path]:
    """Cell directories of cells that did not finish: stopped by Ctrl-C (status interrupted), or
    without a whole cell.json, or a save that a kill cut off (a `.<n>-<id>.tmp` directory)."""
    cells = run_dir / "cells"
    if not cells.is_dir():
        return []
    found = []
    for d in sorted(cells.iterdir()):
        if not d.is_dir():
            continue
        if d.name.startswith("."):
            found.append(d)
            continue
        try:
            row = _read_json(d / "cell.json").get("row")
        except StoreError:
            row = None
        if not isinstance(row, dict) or row.get("status") == "interrupted":
            found.append(d)
    return found


def _cell_dirs(run_dir: Path) -> list[Path]:
    cells = run_dir / "cells"
    if not cells.is_dir():
        return []
    return sorted(d for d in cells.iterdir() if d.is_dir() and not d.name.startswith("."))


# ---------------------------------------------------------------------------------------------- loading

@dataclass
class Run:
    path: Path
    manifest: dict[str, Any]
    cells: pd.DataFrame
    samples: pd.DataFrame
    events: pd.DataFrame


def _why(error: Exception) -> str:
    """The first line of an error, without the exception's class or a traceback."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _read_parquet(path: Path, schema: pa.Schema) -> pa.Table:
    if not path.exists():
        raise StoreError(f"{path}: missing; every cell directory holds samples.parquet, events.parquet "
                         "and cell.json")
    try:
        names = pq.read_schema(path).names
        # Categorical columns read as dictionaries: never one Python string per row.
        table = pq.read_table(path, read_dictionary=[c for c in CATEGORICAL_COLUMNS if c in names])
    except (OSError, pa.ArrowException, ValueError) as e:
        raise StoreError(f"{path}: not a readable Parquet file ({_why(e)}); the file is damaged or truncated") \
            from None
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise StoreError(f"{path}: missing column(s) {', '.join(missing)}; not a goreclaim {path.name}")
    return table.select(schema.names)


def _read_parquet_tables(run_dir: Path, name: str, schema: pa.Schema) -> pa.Table:
    top = run_dir / name
    if top.exists():
        return _read_parquet(top, schema)
    tables = [_read_parquet(d / name, schema) for d in _cell_dirs(run_dir)]
    try:
        return pa.concat_tables(tables) if tables else schema.empty_table()
    except pa.ArrowException as e:
        raise StoreError(f"{run_dir}/cells/*/{name}: the cells' files do not share one schema ({_why(e)})") \
            from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: cannot read: {_why(e)}") from None
    except ValueError as e:
        raise StoreError(f"{path}: not valid JSON ({_why(e)}); the file is damaged or truncated") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


# Columns without which a cells.csv is not one.
REQUIRED_CELL_COLUMNS = ("cell_id", "scenario", "workload", "repeat", "status")


def _read_cells_csv(path: Path) -> pd.DataFrame:
    """cells.csv with every field as text; a short or long row (a cut-off write) is an error."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, strict=True))
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: cannot read: {_why(e)}") from None
    except csv.Error as e:
        raise StoreError(f"{path}: not valid CSV ({_why(e)}); the file is damaged or truncated") from None
    if not rows:
        raise StoreError(f"{path}: empty; expected a header line")
    header, body = rows[0], rows[1:]
    for n, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise StoreError(f"{path}: line {n} has {len(row)} fields, the header {len(header)}; "
                             "the file is damaged or truncated")
    missing = [c for c in REQUIRED_CELL_COLUMNS if c not in header]
    if missing:
        raise StoreError(f"{path}: missing column(s) {', '.join(missing)}; not a goreclaim cells.csv")
    return pd.DataFrame(body, columns=header, dtype=object)


def _cells_from_cell_files(run_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for d in _cell_dirs(run_dir):
        cell_json = _read_json(d / "cell.json")
        if not isinstance(cell_json.get("row"), dict):
            raise StoreError(f"{d / 'cell.json'}: no \"row\" object; not a goreclaim cell.json")
        rows.append(cell_json["row"])
    return rows


def _upgrade_v1_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Version 1 held GOMEMLIMIT only as resolved bytes in `gomemlimit`: move them to
    `gomemlimit_bytes` and write `gomemlimit` as the size those bytes make ("1.2GiB")."""
    frame = frame.copy()
    written = frame["gomemlimit"].map(_blank) if "gomemlimit" in frame.columns else pd.Series("", index=frame.index)
    digits = written.str.fullmatch(r"[0-9]+")
    frame["gomemlimit"] = [format_size(int(v)) if d else v for v, d in zip(written, digits, strict=True)]
    resolved = pd.Series([int(v) if d else None for v, d in zip(written, digits, strict=True)], index=frame.index,
                         dtype="Int64")
    columns = [c for c in frame.columns if c != "gomemlimit_bytes"]
    frame = frame.drop(columns=["gomemlimit_bytes"], errors="ignore")
    frame.insert(columns.index("gomemlimit") + 1, "gomemlimit_bytes", resolved)
    return frame


def manifest_version(manifest: dict[str, Any], manifest_path: Path) -> int:
    """The run directory's format version (1 when the manifest names none); StoreError if unknown."""
    version = manifest.get("manifest_version", 1)
    if isinstance(version, bool) or version not in KNOWN_VERSIONS:
        known = ", ".join(str(v) for v in KNOWN_VERSIONS)
        raise StoreError(f"{manifest_path}: manifest_version {version} is not one this goreclaim reads ({known})")
    return int(version)


def load_run(run_dir: Path | str) -> Run:
    """Load a run directory, finished or not (falls back to the per-cell files), in the current format.

    Older formats are upgraded in memory, so readers see one shape; a damaged or incomplete
    directory raises StoreError naming the file.
    """
    # Decoding buffers from the system allocator go back to the OS once freed; Arrow's default
    # pool keeps them, and a report would hold the decode peak to its end.
    pa.set_memory_pool(pa.system_memory_pool())
    run_dir = Path(run_dir)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        raise StoreError(f"{manifest_path}: missing; {run_dir} is not a goreclaim run directory")
    manifest = _read_json(manifest_path)
    version = manifest_version(manifest, manifest_path)
    if manifest.get("complete") is True:
        for name in ("samples.parquet", "events.parquet") + (("cells.csv",) if manifest.get("n_cells") else ()):
            if not (run_dir / name).exists():
                raise StoreError(f"{run_dir / name}: missing, though the manifest says the run is complete")
    csv_path = run_dir / "cells.csv"
    if csv_path.exists() and csv_path.stat().st_size:
        raw = _read_cells_csv(csv_path)
        source = csv_path
    else:
        raw = _cells_columns(_cells_from_cell_files(run_dir))
        source = run_dir / "cells"
    try:
        if version == 1:
            raw = _upgrade_v1_cells(raw)
        cells = _apply_cell_dtypes(raw)
    except (ValueError, TypeError) as e:
        raise StoreError(f"{source}: {_why(e)}") from None
    samples = _samples_frame(_read_parquet_tables(run_dir, "samples.parquet", SAMPLES_SCHEMA))
    events = _samples_frame(_read_parquet_tables(run_dir, "events.parquet", EVENTS_SCHEMA))
    return Run(path=run_dir, manifest=manifest, cells=cells, samples=samples, events=events)
