"""The tabular pipeline's look at a local input before anything runs or is recorded.

It reads the header and the first rows only, so a misspelt label, a label that cannot be the
problem type, or an empty file is refused in well under a second, naming the user's own path and
what to do instead. Preprocess checks every row again, where the data really is (and is the only
check for data already in S3).
"""
from __future__ import annotations

import csv
import difflib
import gzip
from pathlib import Path

from pipelines.inputs import InputError

SAMPLE_ROWS = 5000  # what the first look reads, at most
MANY_CLASSES = 20  # a numeric label with more distinct values than this, most of them rare, is a quantity
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "<na>"})
TABLES = (".csv", ".csv.gz", ".parquet")


def check_input(path: Path, cfg) -> None:
    """Refuse, in one line, a local input (a file or a folder of them) the tabular pipeline cannot use
    with these settings (`cfg.settings`: label, problem type)."""
    settings = cfg.settings
    table = first_table(path)
    header, labels = head(table, settings.label)
    if settings.label not in header:
        close = difflib.get_close_matches(settings.label, header, n=1, cutoff=0.6)
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        hint = f"did you mean --label {close[0]}?" if close else "pass --label COLUMN"
        raise InputError(f"{table} has no column {settings.label!r}: {hint} (its columns: {shown})")
    present = [v for v in labels if v.strip().lower() not in MISSING]
    if not present:
        raise InputError(f"{table}: the label {settings.label!r} is empty in the first {len(labels)} rows; "
                         f"check the --label")
    _check_problem_type(table, settings.label, settings.problem_type, present)


def first_table(path: Path) -> Path:
    """`path`, or the first table file (sorted) of a folder."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(TABLES)
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            raise InputError(f"--input-data {path}: the folder has no .csv, .csv.gz or .parquet file")
        return found[0]
    if not path.is_file():
        raise InputError(f"--input-data {path}: no such file or folder (give CSV/Parquet files or an s3:// URI)")
    return path


def head(table: Path, label: str) -> tuple[list[str], list[str]]:
    """(the column names, the label's values in the first rows, as text)."""
    if table.name.endswith(".parquet"):
        return _parquet_head(table, label)
    if table.stat().st_size == 0:
        raise InputError(f"{table} is empty: give a CSV file with a header row and data rows")
    opener = gzip.open if table.name.endswith(".gz") else open
    with opener(table, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
        rows = csv.reader(f)
        header = [name.strip() for name in next(rows, [])]
        if not any(header):
            raise InputError(f"{table} has no header row: its first line must name the columns")
        separator = next((s for s in (";", "\t", "|") if len(header) == 1 and s in header[0]), None)
        if separator:
            raise InputError(f"{table} is separated by {separator!r}, not by commas (its header is one column): "
                             f"save it as comma-separated CSV")
        at = header.index(label) if label in header else None
        labels = [row[at] if at < len(row) else "" for _, row in zip(range(SAMPLE_ROWS), rows) if row] \
            if at is not None else list(_rows(rows))
    if not labels:
        raise InputError(f"{table} has a header but no data rows; check that the whole file was written")
    return header, labels


def _rows(rows) -> list[str]:
    """Whether there is a data row at all (the label column being absent, only that is asked)."""
    return [""] if next(rows, None) is not None else []


def _parquet_head(table: Path, label: str) -> tuple[list[str], list[str]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(table)
    except Exception as e:  # pyarrow's errors say what is wrong with the file
        raise InputError(f"{table} cannot be read as Parquet: {e}") from None
    header = list(file.schema_arrow.names)
    if file.metadata.num_rows == 0:
        raise InputError(f"{table} has no rows")
    if label not in header:
        return header, [""]
    batch = next(file.iter_batches(batch_size=SAMPLE_ROWS, columns=[label]))
    return header, ["" if v is None else str(v) for v in batch.column(0).to_pylist()]


def _check_problem_type(table: Path, label: str, problem_type: str, values: list[str]) -> None:
    numbers = [_number(v) for v in values]
    numeric = all(n is not None for n in numbers)
    distinct = len(set(values))
    quantity = numeric and distinct > MANY_CLASSES and distinct > len(values) / 10
    where = f"{table}: the label {label!r}"
    if problem_type == "regression" and not numeric:
        text = next(v for v, n in zip(values, numbers) if n is None)
        kind = "binary" if distinct == 2 else "multiclass"
        raise InputError(f"{where} is not a number ({text!r}) but one of {distinct} classes in the first rows: "
                         f"use --problem-type {kind}")
    if problem_type == "binary" and distinct > 2:
        kind = "regression" if quantity else "multiclass"
        raise InputError(f"{where} has {distinct} distinct values in the first {len(values)} rows, not 2: "
                         f"use --problem-type {kind}")
    if problem_type == "multiclass" and quantity:
        raise InputError(f"{where} has {distinct} distinct numbers in the first {len(values)} rows: it is a "
                         f"quantity, not classes; use --problem-type regression")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None

