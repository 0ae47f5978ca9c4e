"""Check, clean and split raw data (SageMaker SKLearn processing container).

Writes the cleaned raw columns, label first, for train/validation/test plus a
profile. It engineers no features: the model does that, so serving accepts
the same raw columns. Schema-agnostic: column kinds are inferred from the data.
"""
import argparse
import csv
import gzip
import json
import os
import re
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

PROBLEM_TYPES = ("binary", "multiclass", "regression")
SPLITS = ("train", "validation", "test")
# A column is numeric when at least this share of its values parse as numbers;
# the values that do not are then reported as errors rather than silently dropped.
NUMERIC_SHARE = 0.9
TOP_VALUES = 10
# Separators people use instead of commas: a header that splits into one column on them was not comma-separated.
OTHER_SEPARATORS = (";", "\t", "|")
SHOWN_VALUE = 80  # characters of a bad value quoted in a message
# Bytes no text file holds (tab, newlines and form feeds excepted): undecodable input with them is binary data.
BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f]")


class DataError(ValueError):
    """The input data is unusable; the message tells the user what to fix."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-dir", default="/opt/ml/processing/input/raw")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--label", default="Revenue")
    p.add_argument("--problem-type", default="binary", choices=PROBLEM_TYPES)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--failure-file", default="/opt/ml/output/message")
    return p.parse_args(argv)


def list_inputs(input_dir):
    """Every .csv, .csv.gz and .parquet file under input_dir, recursively, sorted."""
    root = Path(input_dir)
    found = sorted(p for p in root.rglob("*") if p.is_file())
    files = [p for p in found if p.name.endswith((".csv", ".csv.gz", ".parquet"))]
    if not files:
        seen = ", ".join(p.name for p in found[:10]) or "nothing"
        raise DataError(f"no .csv, .csv.gz or .parquet files under {root} (found: {seen}); "
                        f"check the processing input's S3 URI or rename the file")
    return files


def read_file(path):
    """One input file; CSV values are kept as text so that categoricals are written back unchanged."""
    if path.name.endswith(".parquet"):
        try:
            return pd.read_parquet(path).reset_index(drop=True)  # needs pyarrow, imported by pandas only here
        except ImportError as e:
            raise DataError(f"cannot read {path}: {e}; convert it to CSV or use an image with pyarrow") from e
    check_csv(path)
    try:
        return pd.read_csv(path, dtype=str)
    except (ValueError, pd.errors.ParserError) as e:  # check_csv should have said why; never a bare traceback
        raise DataError(f"cannot read {path} as CSV: {' '.join(str(e).split())}") from e


def check_csv(path):
    """Refuse a CSV file pandas would misread or reject with a message naming neither file nor line:
    empty, binary or not UTF-8, not comma-separated, duplicated column names, no data rows, or a row
    whose field count differs from the header's (a truncated upload drops the end of the last row)."""
    with _open_bytes(path) as raw:
        rows = csv.reader(_utf8_lines(raw, path))
        try:
            width, count = len(_header(next(rows, None), path)), 0
            for count, row in enumerate(rows, 1):
                if row and len(row) != width:
                    raise _width_error(path, rows.line_num, len(row), width, last=next(rows, None) is None)
        except (csv.Error, OSError, EOFError) as e:  # a broken quote, a corrupt .gz
            raise DataError(f"{path} line {rows.line_num + 1} cannot be read as CSV: {e}") from e
    if not count:
        raise DataError(f"{path} has a header but no data rows; check that the whole file was uploaded")


def _open_bytes(path):
    """The file's bytes, decompressed when it is a .gz; a .gz that is not gzip is named as such."""
    if not path.name.endswith(".gz"):
        return open(path, "rb")
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            raise DataError(f"{path} is not gzip-compressed although its name ends in .gz; rename or compress it")
    return gzip.open(path, "rb")


def _utf8_lines(raw, path):
    """The file's lines as text; a line that is not UTF-8 is an error naming it (pandas names neither)."""
    csv.field_size_limit(2**31 - 1)  # a long field is data, not an error; the width check catches runaway lines
    for number, line in enumerate(raw, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _not_text(path, number, line, e.start) from None
        if "\0" in text:
            raise _not_text(path, number, line, line.index(b"\0"))
        yield text.removeprefix("\ufeff") if number == 1 else text


def _not_text(path, number, line, at):
    """Why line `number` cannot be read: binary data, or text in an encoding other than UTF-8."""
    with _open_bytes(path) as raw:
        head = raw.read(4096)
    if BINARY_BYTES.search(head + line):
        return DataError(f"{path} is a binary file, not CSV text (control bytes near line {number}); "
                         f"give a comma-separated text file")
    return DataError(f"{path} line {number} is not UTF-8 text (byte 0x{line[at]:02x} at column {at + 1}); "
                     f"save the file as UTF-8")


def _header(row, path):
    """The header row, refusing the shapes that make pandas see wrong columns without complaint."""
    if not row:
        raise DataError(f"{path} is empty ({path.stat().st_size} bytes): it has no header line")
    if len(row) == 1:
        separator = next((s for s in OTHER_SEPARATORS if s in row[0]), None)
        if separator:
            raise DataError(f"{path} is separated by {separator!r}, not by commas (its header is one column: "
                            f"{_shown(row[0])}); save it as comma-separated CSV")
    repeated = sorted({name for name in row if row.count(name) > 1})
    if repeated:
        raise DataError(f"{path} names the column(s) {', '.join(map(repr, repeated))} more than once in its "
                        f"header; rename or drop the duplicates")
    return row


def _width_error(path, line, fields, width, last):
    """pandas pads a short row with missing values (dropping a truncated last row's label quietly)."""
    why = ("the file looks truncated: its last row is cut short" if last and fields < width
           else "fix that row (a stray separator, or a value that needs quotes?)")
    return DataError(f"{path} line {line} has {fields} fields but the header has {width}; {why}")


def _shown(value):
    """A value short enough to quote in a message."""
    return repr(value) if len(value) <= SHOWN_VALUE else repr(value[:SHOWN_VALUE]) + f"... ({len(value)} characters)"


def read_inputs(paths, label):
    """Concatenate files whose columns agree; the index's first level names each row's file."""
    frames = {}
    for path in paths:
        df = read_file(path)
        if label not in df.columns:
            raise DataError(f"{path} has no label column {label!r} (its columns: {', '.join(df.columns)}); "
                            f"pass --label with the name of the target column")
        if frames:
            first, expected = next(iter(frames.items()))
            missing = [c for c in expected.columns if c not in df.columns]
            extra = [c for c in df.columns if c not in expected.columns]
            if missing or extra:
                raise DataError(f"{path} does not match the columns of {first}: missing "
                                f"{', '.join(missing) or 'none'}; unexpected {', '.join(extra) or 'none'}")
            df = df[expected.columns]
        frames[str(path)] = df
    return pd.concat(frames, names=["file", "row"])


def _where(df, mask):
    """Where the first row selected by mask came from (a CSV's line 1 is its header)."""
    file, row = df.index[mask][0]
    return f"{file} row {row + 1}" if file.endswith(".parquet") else f"{file} line {row + 2}"


def column_kinds(df, label):
    """'integer', 'numeric' or 'categorical' for every column but the label."""
    kinds = {}
    for c in df.columns.drop(label):
        s = df[c]
        present = s.notna()
        if not present.any():
            raise DataError(f"column {c!r} is empty in every row; drop it or fill it")
        if pd.api.types.is_bool_dtype(s):
            kinds[c] = "categorical"
            continue
        parsed = pd.to_numeric(s[present], errors="coerce")
        if parsed.notna().mean() < NUMERIC_SHARE:
            kinds[c] = "categorical"
        else:
            kinds[c] = "integer" if (parsed.dropna() % 1 == 0).all() else "numeric"
    return kinds


def parse_numeric(df, column):
    """The column as numbers; a value that does not parse, or is infinite, is an error naming it."""
    s = df[column]
    parsed = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & parsed.isna()
    if bad.any():
        raise DataError(f"column {column!r} should be numeric but {_where(df, bad)} has {_shown(s[bad].iloc[0])}; "
                        f"fix or blank that value")
    infinite = np.isinf(parsed.astype("float64"))
    if infinite.any():
        raise DataError(f"column {column!r} has an infinite value ({s[infinite].iloc[0]!r}) at "
                        f"{_where(df, infinite)}; infinities cannot be imputed, fix or blank it")
    return parsed.astype("float64")


def class_order(values):
    """Class names in code order: numerically if numbers, false<true for booleans, else sorted."""
    names = sorted({str(v) for v in values})
    try:
        return sorted(names, key=float)
    except ValueError:
        if {n.lower() for n in names} <= {"false", "true"}:
            return sorted(names, key=lambda n: n.lower() == "true")
        return names


def encode_label(y, problem_type):
    """(encoded label, class names or None) from a label without missing values."""
    if problem_type == "regression":
        parsed = pd.to_numeric(y, errors="coerce")
        bad = parsed.isna() | np.isinf(parsed.astype("float64"))
        if bad.any():
            raise DataError(f"regression label {y.name!r} has a non-numeric value {y[bad].iloc[0]!r} "
                            f"at {_where(y.to_frame(), bad)}")
        return parsed.astype("float64"), None
    classes = class_order(y.unique())
    if len(classes) < 2:
        raise DataError(f"label {y.name!r} has a single class ({classes[0] if classes else 'no rows'}); "
                        f"a classifier needs at least two, check the input data or the --label")
    if problem_type == "binary" and len(classes) > 2:
        raise DataError(f"label {y.name!r} has {len(classes)} classes ({', '.join(classes[:10])}); "
                        f"use --problem-type multiclass")
    codes = {name: i for i, name in enumerate(classes)}
    return y.astype(str).map(codes).astype("int64"), classes


def split_indices(y, problem_type, validation_fraction, test_fraction, seed):
    """Positional indices of train/validation/test; stratified by class for classification."""
    if not (0 < validation_fraction and 0 < test_fraction and validation_fraction + test_fraction < 1):
        raise DataError(f"--validation-fraction {validation_fraction} and --test-fraction {test_fraction} must be "
                        f"positive and sum to less than 1")
    from sklearn.model_selection import train_test_split  # a second to import: bad input is refused before it

    labels = None if problem_type == "regression" else y.to_numpy()
    idx = np.arange(len(y))
    try:
        rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=labels)
        train, val = train_test_split(rest, test_size=validation_fraction / (1 - test_fraction),
                                      random_state=seed, stratify=None if labels is None else labels[rest])
    except ValueError as e:
        raise DataError(f"cannot split {len(y)} rows into train/validation/test: {e}; "
                        f"every class needs a few rows in each split, so add data or merge rare classes") from e
    return {"train": np.sort(train), "validation": np.sort(val), "test": np.sort(test)}


def fill_values(train, kinds):
    """Imputation values learned on the training split only: median (rounded for integer columns) or mode."""
    fills = {}
    for c, kind in kinds.items():
        s = train[c].dropna()
        if s.empty:
            raise DataError(f"column {c!r} has no values in the training split, so nothing to impute from; "
                            f"fill it or drop it")
        if kind == "integer":
            fills[c] = round(s.median())
        elif kind == "numeric":
            fills[c] = float(s.median())
        else:
            counts = s.astype(str).value_counts()
            fills[c] = min(counts.index[counts == counts.max()])  # deterministic on ties
    return fills


def _number(x):
    return None if pd.isna(x) else float(x)


def profile_columns(df, dtypes, kinds, fills):
    """Per-column statistics of the deduplicated data before imputation, with the written dtype."""
    out = {}
    for c, kind in kinds.items():
        s = df[c]
        stats = {"kind": kind, "dtype": str(dtypes[c]), "count": int(s.notna().sum()),
                 "missing": int(s.isna().sum()), "imputed_with": fills[c]}
        if kind != "categorical":
            stats.update(mean=_number(s.mean()), std=_number(s.std()), min=_number(s.min()), max=_number(s.max()))
        else:
            top = s.dropna().astype(str).value_counts().head(TOP_VALUES)
            stats.update(unique=int(s.nunique()), top={k: int(v) for k, v in top.items()})
        out[c] = stats
    return out


def label_balance(y, problem_type):
    if problem_type == "regression":
        return {"mean": _number(y.mean()), "std": _number(y.std()), "min": _number(y.min()), "max": _number(y.max())}
    return {str(k): int(v) for k, v in y.value_counts().sort_index().items()}


def _atomic_write(path, text):
    """Write via a temporary sibling and os.replace, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args):
    files = list_inputs(args.input_dir)
    raw = read_inputs(files, args.label)
    rows_read = len(raw)
    df = raw.drop_duplicates()
    duplicates = rows_read - len(df)
    label_missing = int(df[args.label].isna().sum())
    df = df[df[args.label].notna()]
    if df.empty:
        raise DataError(f"no rows with a {args.label!r} value in {', '.join(map(str, files))}")

    kinds = column_kinds(df, args.label)
    df = df.assign(**{c: parse_numeric(df, c) for c, k in kinds.items() if k != "categorical"})
    y, classes = encode_label(df[args.label], args.problem_type)
    features = df.drop(columns=args.label).reset_index(drop=True)
    y = y.reset_index(drop=True)

    parts = split_indices(y, args.problem_type, args.validation_fraction, args.test_fraction, args.seed)
    fills = fill_values(features.iloc[parts["train"]], kinds)
    cleaned = features.fillna(fills).astype({c: "int64" for c, k in kinds.items() if k == "integer"})

    out = Path(args.output_dir)
    for name, idx in parts.items():
        frame = pd.concat([y.iloc[idx].rename(args.label), cleaned.iloc[idx]], axis=1)
        _atomic_write(out / name / f"{name}.csv", frame.to_csv(index=False))
    profile = {
        "problem_type": args.problem_type,
        "label": args.label,
        "classes": classes,
        "input_files": [str(f) for f in files],
        "rows_read": rows_read,
        "duplicates_dropped": duplicates,
        "label_missing_dropped": label_missing,
        "rows": {name: len(idx) for name, idx in parts.items()},
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
        "test_fraction": args.test_fraction,
        "label_balance": {"all": label_balance(y, args.problem_type),
                          **{name: label_balance(y.iloc[idx], args.problem_type) for name, idx in parts.items()}},
        "columns": profile_columns(features, cleaned.dtypes, kinds, fills),
    }
    _atomic_write(out / "profile" / "profile.json", json.dumps(profile, indent=2))
    print(f"rows read {rows_read}, duplicates dropped {duplicates}, missing labels dropped {label_missing}, "
          f"split {profile['rows']}")
    return profile


def write_failure(path, message):
    """SageMaker shows this file as the job's failure reason; losing it must not hide the real error."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(message)
    except OSError:
        pass


def main(argv=None):
    args = parse_args(argv)
    try:
        run(args)
    except Exception as e:
        traceback.print_exc()
        reason = str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
        write_failure(args.failure_file, "Preprocessing failed: " + " ".join(reason.split()))
        sys.exit(1)


if __name__ == "__main__":
    main()
