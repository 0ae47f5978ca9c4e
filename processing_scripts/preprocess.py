"""Check, describe and split raw data of any table (SageMaker SKLearn processing container).

Writes the schema of the input (`schema/schema.json`: each column's kind, what
was dropped and why, the label's classes), the used columns with the label
first for train/validation/test, and a profile. Missing values stay missing
(XGBoost handles them) and no features are engineered: the model builds them
from the schema, so serving accepts the same raw columns. Column kinds are
inferred from the values unless declared (--schema), in whole or per column.
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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PROBLEM_TYPES = ("binary", "multiclass", "regression")
SPLITS = ("train", "validation", "test")
# A column is numeric when at least this share of its values parse as numbers;
# the values that do not are then reported as errors rather than silently dropped.
NUMERIC_SHARE = 0.9
TOP_VALUES = 10
KINDS = ("number", "code", "category", "boolean", "datetime", "dropped")
# Spellings of a boolean, compared lower-case and stripped. training_scripts/features.py reads the
# same ones (tests/test_schema.py checks that the two lists agree: the scripts run in separate images).
TRUE_SPELLINGS = frozenset({"true", "t", "yes", "y", "1", "1.0", "on"})
FALSE_SPELLINGS = frozenset({"false", "f", "no", "n", "0", "0.0", "off"})
# Dates and times as people write them: 2024-05-31, 2024/05/31 14:00:05, 31/05/2024, 5/31/24 2:00 PM.
DATE_PATTERN = (r"\d{4}[-/]\d{1,2}[-/]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
                r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?( ?[AaPp][Mm])?)?")
MIXED_FORMATS = int(pd.__version__.split(".")[0]) >= 2  # pandas 1 reads each value on its own anyway
# A column with a different value in every row is an identifier once there are this many rows.
MIN_ROWS_FOR_ID = 20
# Free text: long values with several words each (mean characters and spaces per value).
FREE_TEXT_CHARACTERS = 30
FREE_TEXT_SPACES = 3
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
    p.add_argument("--label", required=True, help="the column to predict")
    p.add_argument("--problem-type", default="binary", choices=PROBLEM_TYPES)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--schema", default="", help="declared schema, JSON: {column: kind} or a schema.json")
    p.add_argument("--positive-class", default="",
                   help="binary: the class that is 1 (default: the true one of true/false, yes/no, 1/0..., "
                        "else the minority class)")
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


def _kind_of_numbers(parsed, rows):
    """number, or dropped as an identifier: a different whole number in every row."""
    if rows >= MIN_ROWS_FOR_ID and parsed.nunique() == rows and (parsed % 1 == 0).all():
        return "dropped", "identifier: a different whole number in every row"
    return "number", None


def _is_boolean(values):
    """True when the distinct values are spellings of true and of false (TRUE/FALSE, yes/no, y/n, ...)."""
    spelled = {str(v).strip().lower() for v in values}
    return bool(spelled & TRUE_SPELLINGS) and bool(spelled & FALSE_SPELLINGS) and \
        spelled <= TRUE_SPELLINGS | FALSE_SPELLINGS


def _looks_like_dates(text):
    return text.str.fullmatch(DATE_PATTERN).mean() >= NUMERIC_SHARE


def infer_kind(s):
    """(kind, reason) of one raw column, from its values alone; reason is why a column is dropped.

    Kinds: number, category, boolean, datetime, dropped. Integer codes look like numbers (a page count
    and a region code are both whole numbers), so `code` is never inferred: declare it."""
    present = s.dropna()
    rows = len(s)
    if present.empty:
        return "dropped", "empty: no value in any row"
    if present.nunique() == 1 and len(present) == rows:
        return "dropped", f"constant: every row is {_shown(str(present.iloc[0]))}"
    if pd.api.types.is_bool_dtype(s) or _is_boolean(present.unique()):
        return "boolean", None
    parsed = pd.to_numeric(present, errors="coerce")
    if parsed.notna().mean() >= NUMERIC_SHARE:
        return _kind_of_numbers(parsed.dropna(), rows)
    text = present.astype(str).str.strip()
    if _looks_like_dates(text):
        return "datetime", None
    if text.str.len().mean() >= FREE_TEXT_CHARACTERS and text.str.count(" ").mean() >= FREE_TEXT_SPACES:
        return "dropped", "free text: long sentences, not categories (declare it as category to keep it)"
    if rows >= MIN_ROWS_FOR_ID and text.nunique() == rows:
        return "dropped", "identifier: a different value in every row"
    return "category", None


def read_declared(text, columns):
    """The declared schema: {column: kind} overriding inference, and whether it replaces it whole.

    `text` is JSON: a {column: kind} mapping (those columns only), or a schema.json as preprocess
    writes it (its columns replace the inferred schema: any other column is dropped)."""
    if not text.strip():
        return {}, False
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise DataError(f"the declared schema is not JSON ({e}); give {{\"column\": \"kind\", ...}} "
                        f"or a schema.json") from e
    whole = isinstance(doc, dict) and isinstance(doc.get("columns"), list)
    if whole:
        doc = {c.get("name"): c.get("kind") for c in doc["columns"] if isinstance(c, dict)}
    if not isinstance(doc, dict):
        raise DataError("the declared schema must be a JSON object of {\"column\": \"kind\"}")
    for name, kind in doc.items():
        if kind not in KINDS:
            raise DataError(f"the declared schema gives column {name!r} kind {kind!r}; use one of "
                            f"{', '.join(KINDS)}")
    absent = [name for name in doc if name not in columns]
    if absent:
        raise DataError(f"the declared schema names column(s) {', '.join(map(repr, absent))}, which the input "
                        f"does not have (its columns: {', '.join(columns)}); fix the names or remove them")
    return doc, whole


def infer_schema(df, label, declared, whole):
    """[{name, kind, source, reason?}] for every column but the label, in file order."""
    columns = []
    for name in df.columns.drop(label):
        if name in declared:
            kind, reason, source = declared[name], "declared" if declared[name] == "dropped" else None, "declared"
        elif whole:
            kind, reason, source = "dropped", "not in the declared schema", "declared"
        else:
            (kind, reason), source = infer_kind(df[name]), "inferred"
        columns.append({"name": name, "kind": kind, "source": source, **({"reason": reason} if reason else {})})
    return columns


def parse_column(df, column, kind):
    """The column's values as that kind: checked and parsed, so a bad value is named with its line."""
    s = df[column]
    if kind in ("number", "code"):
        parsed = parse_numeric(df, column)
        if kind == "code":
            bad = parsed.notna() & ((parsed % 1 != 0) | (parsed < 0))
            if bad.any():
                raise DataError(f"column {column!r} is declared an integer code but {_where(df, bad)} has "
                                f"{_shown(str(s[bad].iloc[0]))}; declare it as category or number")
        return parsed
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(s):
            return s
        spelled = s.astype("string").str.strip().str.lower()
        bad = s.notna() & ~spelled.isin(TRUE_SPELLINGS | FALSE_SPELLINGS).fillna(False).astype(bool)
        if bad.any():
            raise DataError(f"column {column!r} is boolean but {_where(df, bad)} has {_shown(str(s[bad].iloc[0]))}; "
                            f"use true/false, yes/no, y/n, t/f, 1/0 or on/off, or declare another kind")
        return s
    if kind == "datetime":
        parsed = to_dates(s)
        bad = s.notna() & parsed.isna()
        if bad.any():
            raise DataError(f"column {column!r} holds dates but {_where(df, bad)} has {_shown(str(s[bad].iloc[0]))}; "
                            f"fix or blank that value (ISO 8601, e.g. 2024-05-31 14:00, reads best)")
        return s
    return s


def to_dates(s):
    """Timestamps (UTC), NaT where a value is not a date; mixed formats are read value by value, quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": reading each value is the point
        out = pd.to_datetime(s, errors="coerce", utc=True)  # fast: one format, guessed from the first value
        retry = out.isna() & s.notna()
        if retry.any() and MIXED_FORMATS:  # mixed formats in one column (a date here, a date and time there)
            out[retry] = pd.to_datetime(s[retry], errors="coerce", utc=True, format="mixed")
    return out


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
                        f"{_where(df, infinite)}; infinities cannot be used, fix or blank it")
    return parsed.astype("float64")


def class_order(values):
    """Class names in code order: numerically if numbers, false<true for booleans, else sorted."""
    names = sorted({str(v) for v in values})
    try:
        return sorted(names, key=float)
    except ValueError:
        if _is_boolean(names) and len(names) == 2:
            return sorted(names, key=lambda n: n.strip().lower() in TRUE_SPELLINGS)
        return names


def label_kind(classes, y):
    if classes is None:
        return "number"
    if _is_boolean(classes) and len(classes) == 2:
        return "boolean"
    return "number" if pd.to_numeric(pd.Series(classes), errors="coerce").notna().all() else "category"


def positive_class(classes, counts, wanted):
    """The positive class of a binary label: `wanted` (any spelling of it), else the true one of a
    true/false pair (True, 1, yes, ...), else the minority class."""
    if wanted:
        match = [c for c in classes if c == wanted] or [c for c in classes if c.strip().lower() == wanted.strip().lower()]
        if not match:
            raise DataError(f"--positive-class {wanted!r} is not a class of the label (classes: {', '.join(classes)})")
        return match[0]
    if _is_boolean(classes):
        return next(c for c in classes if c.strip().lower() in TRUE_SPELLINGS)
    return min(classes, key=lambda c: (counts[c], -classes.index(c)))


def encode_label(y, problem_type, wanted_positive=""):
    """(encoded label, class names in code order or None). Binary: 1 is the positive class."""
    if problem_type == "regression":
        parsed = pd.to_numeric(y, errors="coerce")
        bad = parsed.isna() | np.isinf(parsed.astype("float64"))
        if bad.any():
            raise DataError(f"regression label {y.name!r} has a non-numeric value {y[bad].iloc[0]!r} "
                            f"at {_where(y.to_frame(), bad)}")
        return parsed.astype("float64"), None
    names = y.astype(str)
    classes = class_order(names.unique())
    if len(classes) < 2:
        raise DataError(f"label {y.name!r} has a single class ({classes[0] if classes else 'no rows'}); "
                        f"a classifier needs at least two, check the input data or the --label")
    if problem_type == "binary":
        if len(classes) > 2:
            raise DataError(f"label {y.name!r} has {len(classes)} classes ({', '.join(classes[:10])}); "
                            f"use --problem-type multiclass")
        positive = positive_class(classes, names.value_counts().to_dict(), wanted_positive)
        classes = [c for c in classes if c != positive] + [positive]
    elif wanted_positive:
        raise DataError("--positive-class applies to binary labels only; drop it for a multiclass problem")
    codes = {name: i for i, name in enumerate(classes)}
    return names.map(codes).astype("int64"), classes


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


def _whole_numbers(s):
    return pd.api.types.is_float_dtype(s) and bool((s.dropna() % 1 == 0).all())


def _number(x):
    return None if pd.isna(x) else float(x)


def profile_column(s, kind):
    """Statistics of one column of the deduplicated data: counts, then by kind a summary or top values."""
    present = s.dropna()
    stats = {"kind": kind, "count": int(len(present)), "missing": int(s.isna().sum()), "unique": int(present.nunique())}
    if kind in ("number", "code"):
        stats.update(mean=_number(present.mean()), std=_number(present.std()), min=_number(present.min()),
                     max=_number(present.max()), typical=_number(present.median()))
    elif kind == "datetime":
        dates = to_dates(present)
        stats.update(min=str(dates.min()) if len(dates) else None, max=str(dates.max()) if len(dates) else None,
                     typical=str(present.iloc[0]) if len(present) else None)
    else:
        top = present.astype(str).value_counts().head(TOP_VALUES)
        stats.update(top={k: int(v) for k, v in top.items()},
                     typical=min(top.index[top == top.max()]) if len(top) else None)  # deterministic on ties
    return stats


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

    declared, whole = read_declared(args.schema, [c for c in df.columns if c != args.label])
    columns = infer_schema(df, args.label, declared, whole)
    kept = [c for c in columns if c["kind"] != "dropped"]
    if not kept:
        raise DataError(f"no usable column besides the label {args.label!r}: "
                        + "; ".join(f"{c['name']} dropped ({c['reason']})" for c in columns))
    df = df.assign(**{c["name"]: parse_column(df, c["name"], c["kind"]) for c in kept})
    y, classes = encode_label(df[args.label], args.problem_type, args.positive_class)
    features = df[[c["name"] for c in kept]].reset_index(drop=True)
    y = y.reset_index(drop=True)
    parts = split_indices(y, args.problem_type, args.validation_fraction, args.test_fraction, args.seed)

    schema = {
        "label": {"name": args.label, "kind": label_kind(classes, y), "problem_type": args.problem_type,
                  "classes": classes, **({"positive_class": classes[1]} if args.problem_type == "binary" else {})},
        "columns": columns,
    }
    out = Path(args.output_dir)
    features = features.astype({c: "Int64" for c in features if _whole_numbers(features[c])})  # 3, not 3.0
    for name, idx in parts.items():
        frame = pd.concat([y.iloc[idx].rename(args.label), features.iloc[idx]], axis=1)
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
        "columns": {c["name"]: {**profile_column(df[c["name"]], c["kind"]), **({"reason": c["reason"]} if "reason"
                                                                              in c else {})} for c in columns},
    }
    _atomic_write(out / "schema" / "schema.json", json.dumps(schema, indent=2))
    _atomic_write(out / "profile" / "profile.json", json.dumps(profile, indent=2))
    dropped = [c["name"] for c in columns if c["kind"] == "dropped"]
    print(f"rows read {rows_read}, duplicates dropped {duplicates}, missing labels dropped {label_missing}, "
          f"split {profile['rows']}; columns kept {len(kept)}, dropped {len(dropped)}"
          + (f" ({', '.join(dropped)})" if dropped else ""))
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
