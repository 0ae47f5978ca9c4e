"""Check, describe and split raw data of any table across the hosts of a processing job (SageMaker SKLearn container).

Writes the schema of the input (`schema/schema.json`: each column's kind, what
was dropped and why, the label's classes), the used columns with the label
first for train/validation/test as Parquet part files, and a profile. Missing
values stay missing (XGBoost handles them) and no features are engineered: the
model builds them from the schema, so serving accepts the same raw columns.
Column kinds are inferred from the values unless declared (--schema), in whole
or per column.

Sharded: with ProcessingInstanceCount > 1 the raw input is distributed by S3
key, each host reads only its objects and writes its own parts
(`train/part-algo-2-0.parquet`, ...). What needs every row is agreed through
the first host (sorted names), which the others reach by name on PORT:
duplicates across hosts (each host sends a hash per row), the schema (each
host sends mergeable facts per column, the first host infers the kinds, so
they do not depend on how rows fell), the split's cut points, and the profile
(merged from partial profiles). A row's split depends on a hash of the row, or
of a declared key column (--split-key), and the cut points per class, never on
which host read it: the same rows land in the same split whatever the host
count. The exchange is in this file because a processing job ships one script.
"""
import argparse
import csv
import gzip
import json
import os
import re
import resource
import socket
import struct
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

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
# What pandas reads as missing in a CSV, so that reading through Arrow keeps the same values missing.
MISSING_SPELLINGS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
# Profile statistics that need every value (median, distinct count, top values) are exact up to this many
# rows or distinct values and estimated beyond, from the rows (values) with the smallest hashes: a sample
# that is the same whichever host holds which row, so the merged profile never depends on the host count.
SAMPLE = 10_000
# The first host listens here for the others (a SageMaker instance runs one job: no port contention).
PORT = 9097
CONNECT_SECONDS = 600  # hosts of one job start within minutes of each other
_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15)  # splitmix64's constants


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
    p.add_argument("--split-key", default="",
                   help="a column whose rows stay together (a customer id): the split hashes it instead of the row")
    p.add_argument("--parts-per-host", type=int, default=4,
                   help="part files per split and host, so a training cluster up to this many times larger "
                        "than this job still gives every instance data")
    p.add_argument("--schema", default="", help="declared schema, JSON: {column: kind} or a schema.json")
    p.add_argument("--positive-class", default="",
                   help="binary: the class that is 1 (default: the true one of true/false, yes/no, 1/0..., "
                        "else the minority class)")
    p.add_argument("--resource-config", default="/opt/ml/config/resourceconfig.json",
                   help="the job's hosts (SageMaker writes it); absent means one host")
    p.add_argument("--failure-file", default="/opt/ml/output/message")
    return p.parse_args(argv)


def list_inputs(input_dir, required=True):
    """Every .csv, .csv.gz and .parquet file under input_dir, recursively, sorted. A host of a sharded job
    may get none (fewer objects than hosts): `required` is False there, and the job fails only if no host has any."""
    root = Path(input_dir)
    found = sorted(p for p in root.rglob("*") if p.is_file())
    files = [p for p in found if p.name.endswith((".csv", ".csv.gz", ".parquet"))]
    if not files and required:
        seen = ", ".join(p.name for p in found[:10]) or "nothing"
        raise DataError(f"no .csv, .csv.gz or .parquet files under {root} (found: {seen}); "
                        f"check the processing input's S3 URI or rename the file")
    return files


def read_file(path):
    """One input file; CSV values are kept as text so that categoricals are written back unchanged.

    CSV goes through Arrow's reader (several times faster than pandas', and its text columns stay compact);
    whatever Arrow refuses is read again by check_csv, whose message names the file, line and fix."""
    if path.name.endswith(".parquet"):
        try:
            return pd.read_parquet(path).reset_index(drop=True)
        except ImportError as e:
            raise DataError(f"cannot read {path}: {e}; convert it to CSV or use an image with pyarrow") from e
    with _open_bytes(path) as raw:
        head = raw.read(1 << 16)
    header = next(csv.reader([head.decode("utf-8", errors="replace").removeprefix("\ufeff").split("\n", 1)[0]]), None)
    if BINARY_BYTES.search(head) or not head.strip() or len(header or []) < 2:
        check_csv(path)  # explains what is wrong; a one-column table that passes is read below
    _header(header, path)
    try:
        table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header}, null_values=MISSING_SPELLINGS,
            strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as e:
        check_csv(path)
        raise DataError(f"cannot read {path} as CSV: {' '.join(str(e).split())}") from e
    if table.num_rows == 0:
        raise DataError(f"{path} has a header but no data rows; check that the whole file was uploaded")
    # Arrow-backed text under pandas 2 as well (the image's): Python strings would take several times the memory
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


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


def read_inputs(paths, label, columns=None):
    """Concatenate files whose columns agree (with `columns`, when another host read the first file); the
    index's first level names each row's file."""
    frames, first = {}, None
    for path in paths:
        df = read_file(path)
        if label not in df.columns:
            raise DataError(f"{path} has no label column {label!r} (its columns: {', '.join(df.columns)}); "
                            f"pass --label with the name of the target column")
        expected = columns if columns is not None else list(df.columns) if first is None else frames[first].columns
        missing = [c for c in expected if c not in df.columns]
        extra = [c for c in df.columns if c not in expected]
        if missing or extra:
            raise DataError(f"{path} does not match the columns of {first or 'the other hosts'' files'}: missing "
                            f"{', '.join(missing) or 'none'}; unexpected {', '.join(extra) or 'none'}")
        first = first or str(path)
        frames[str(path)] = df[list(expected)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns or [label]},
                            index=pd.MultiIndex.from_arrays([[], []], names=["file", "row"]))
    return pd.concat(frames, names=["file", "row"])


def _where(df, mask):
    """Where the first row selected by mask came from (a CSV's line 1 is its header)."""
    file, row = df.index[mask][0]
    return f"{file} row {row + 1}" if file.endswith(".parquet") else f"{file} line {row + 2}"


# --- hashes: the same for the same values on every host ---------------------------------------


def as_numbers(s):
    """The values as float64, NaN where missing or not a number: through Arrow when every value is one
    (tens of times faster than pandas), else pandas' parser, which decides what counts as a number."""
    if pd.api.types.is_bool_dtype(s):
        return pd.Series(np.nan, index=s.index)
    if pd.api.types.is_numeric_dtype(s):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    try:
        parsed = pa.array(s, from_pandas=True).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, TypeError, ValueError):
        codes, uniques = pd.factorize(s)  # parse each distinct value once: text columns repeat theirs
        parsed = np.append(pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce")
                           .to_numpy(dtype="float64", na_value=np.nan), np.nan)[codes]
    return pd.Series(parsed, index=s.index)


def as_text(s):
    """The values as Arrow-backed text: pandas 2 (the image's) would make Python strings, whose .str
    methods loop in Python, several times slower than Arrow's; pandas 3 makes Arrow text anyway."""
    return s.astype(pd.StringDtype("pyarrow"))


def value_hashes(s, numbers=None):
    """A uint64 per value, equal for equal values whatever else the column holds: numbers hash as numbers
    ("1" and "1.0" alike), other values as their text, missing values alike."""
    numbers = as_numbers(s) if numbers is None else numbers
    out = pd.util.hash_array(numbers.to_numpy())
    text = (s.notna() & numbers.isna()).to_numpy()
    if text.any():
        codes, uniques = pd.factorize(as_text(s[text]))  # hash each distinct text once
        out[text] = pd.util.hash_array(np.asarray(uniques, dtype=object))[codes]
    return out


def row_hashes(columns, rows):
    """A uint64 per row from its values' hashes (a row's identity: exact duplicates share it)."""
    out = np.zeros(rows, dtype="uint64")
    with np.errstate(over="ignore"):
        for hashes in columns:
            out = out * np.uint64(_MIX[2]) + hashes
    return mix(out, 0)


def mix(h, seed):
    """splitmix64 of h salted with seed: well-spread bits, so cut points on them are random splits."""
    with np.errstate(over="ignore"):
        z = np.asarray(h, dtype="uint64") ^ np.uint64((seed * _MIX[2]) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX[0])
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX[1])
        return z ^ (z >> np.uint64(31))


# --- schema inference: facts per column that hosts add up, kinds decided from the sum --------------

FEW = len(TRUE_SPELLINGS | FALSE_SPELLINGS)  # more distinct values than this: neither constant nor boolean


def _is_boolean(values):
    """True when the distinct values are spellings of true and of false (TRUE/FALSE, yes/no, y/n, ...)."""
    spelled = {str(v).strip().lower() for v in values}
    return bool(spelled & TRUE_SPELLINGS) and bool(spelled & FALSE_SPELLINGS) and \
        spelled <= TRUE_SPELLINGS | FALSE_SPELLINGS


def column_facts(s, numbers=None, hashes=None):
    """What inferring one column's kind needs to know, as counts and sets the hosts' shares add up to exactly.

    The distinct values travel only while they are few (constant? boolean?), and the values' hashes only
    where every value here is present and different (an identifier?), so the first host can tell whether
    they differ across hosts too."""
    numbers = as_numbers(s) if numbers is None else numbers
    hashes = value_hashes(s, numbers) if hashes is None else hashes
    present = s.notna().to_numpy()
    distinct = pd.unique(hashes[present])
    few = s[present].drop_duplicates().head(FEW + 1) if len(distinct) <= FEW else None
    text = as_text(s[present & numbers.isna().to_numpy()]).str.strip()  # what is not a number
    return {
        "rows": len(s), "present": int(present.sum()), "bool_dtype": bool(pd.api.types.is_bool_dtype(s)),
        "values": None if few is None else sorted({str(v) for v in few}),
        "value_hashes": None if few is None else sorted(int(h) for h in distinct),
        "numbers": int(numbers.notna().sum()), "whole": bool((numbers.dropna() % 1 == 0).all()),
        "dates": int(text.str.fullmatch(DATE_PATTERN).sum()) if len(text) else 0,
        # numbers count as no characters: they are never free text, and measuring them costs a pass over all
        "characters": int(text.str.len().sum()) if len(text) else 0,
        "spaces": int(text.str.count(" ").sum()) if len(text) else 0,
        "distinct_hashes": hashes if present.all() and len(distinct) == len(s) else None,
    }


def merge_facts(shares):
    """One column's facts over all hosts, from each host's column_facts."""
    total = {k: sum(f[k] for f in shares) for k in ("rows", "present", "numbers", "dates", "characters", "spaces")}
    few = None if any(f["values"] is None for f in shares) else sorted({v for f in shares for v in f["values"]})
    hashes = None if few is None else sorted({h for f in shares for h in f["value_hashes"]})
    distinct = None if any(f["distinct_hashes"] is None for f in shares) else \
        np.concatenate([np.asarray(f["distinct_hashes"], dtype="uint64") for f in shares])
    return {**total, "bool_dtype": any(f["bool_dtype"] for f in shares if f["present"]),
            "values": few if hashes is not None and len(hashes) <= FEW else None, "distinct_values": hashes,
            "whole": all(f["whole"] for f in shares),
            "distinct": distinct is not None and len(pd.unique(distinct)) == len(distinct)}


def kind_of(facts):
    """(kind, reason) of one raw column from its merged facts; reason is why a column is dropped.

    Kinds: number, category, boolean, datetime, dropped. Integer codes look like numbers (a page count
    and a region code are both whole numbers), so `code` is never inferred: declare it."""
    rows, present = facts["rows"], facts["present"]
    if not present:
        return "dropped", "empty: no value in any row"
    if facts["distinct_values"] is not None and len(facts["distinct_values"]) == 1 and present == rows:
        return "dropped", f"constant: every row is {_shown(facts['values'][0])}"
    if facts["bool_dtype"] or (facts["values"] is not None and _is_boolean(facts["values"])):
        return "boolean", None
    if facts["numbers"] >= NUMERIC_SHARE * present:
        if rows >= MIN_ROWS_FOR_ID and facts["numbers"] == rows and facts["whole"] and facts["distinct"]:
            return "dropped", "identifier: a different whole number in every row"
        return "number", None
    if facts["dates"] >= NUMERIC_SHARE * present:
        return "datetime", None
    if facts["characters"] >= FREE_TEXT_CHARACTERS * present and facts["spaces"] >= FREE_TEXT_SPACES * present:
        return "dropped", "free text: long sentences, not categories (declare it as category to keep it)"
    if rows >= MIN_ROWS_FOR_ID and facts["distinct"]:
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


def parse_column(df, column, kind, numbers=None):
    """The column's values as that kind: checked and parsed, so a bad value is named with its line."""
    s = df[column]
    if kind in ("number", "code"):
        parsed = parse_numeric(df, column, numbers)
        if kind == "code":
            bad = parsed.notna() & ((parsed % 1 != 0) | (parsed < 0))
            if bad.any():
                raise DataError(f"column {column!r} is declared an integer code but {_where(df, bad)} has "
                                f"{_shown(str(s[bad].iloc[0]))}; declare it as category or number")
        return parsed
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(s):
            return s
        spelled = as_text(s).str.strip().str.lower()
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


def parse_numeric(df, column, numbers=None):
    """The column as numbers; a value that does not parse, or is infinite, is an error naming it."""
    s = df[column]
    parsed = as_numbers(s) if numbers is None else numbers
    bad = s.notna() & parsed.isna()
    if bad.any():
        raise DataError(f"column {column!r} should be numeric but {_where(df, bad)} has {_shown(s[bad].iloc[0])}; "
                        f"fix or blank that value")
    infinite = np.isinf(parsed)
    if infinite.any():
        raise DataError(f"column {column!r} has an infinite value ({s[infinite].iloc[0]!r}) at "
                        f"{_where(df, infinite)}; infinities cannot be used, fix or blank it")
    return parsed


def class_order(values):
    """Class names in code order: numerically if numbers, false<true for booleans, else sorted."""
    names = sorted({str(v) for v in values})
    try:
        return sorted(names, key=float)
    except ValueError:
        if _is_boolean(names) and len(names) == 2:
            return sorted(names, key=lambda n: n.strip().lower() in TRUE_SPELLINGS)
        return names


def _quantity(classes, counts):
    """Whether a label's "classes" are the values of a quantity: many numbers, most of them rare."""
    if len(classes) <= 20 or pd.to_numeric(pd.Series(classes), errors="coerce").isna().any():
        return False
    return sum(counts[c] < 5 for c in classes) > len(classes) / 2


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


def label_classes(counts, problem_type, wanted_positive, name):
    """Class names in code order (binary: the positive class last), from each class's count over all hosts."""
    classes = class_order(counts)
    if problem_type != "regression" and _quantity(classes, counts):
        raise DataError(f"label {name!r} has {len(classes)} distinct numbers, most of them in a row or two: it is a "
                        f"quantity, not classes; use --problem-type regression")
    if len(classes) < 2:
        raise DataError(f"label {name!r} has a single class ({classes[0] if classes else 'no rows'}); "
                        f"a classifier needs at least two, check the input data or the --label")
    if problem_type == "binary":
        if len(classes) > 2:
            raise DataError(f"label {name!r} has {len(classes)} classes ({', '.join(classes[:10])}); "
                            f"use --problem-type multiclass")
        positive = positive_class(classes, counts, wanted_positive)
        return [c for c in classes if c != positive] + [positive]
    if wanted_positive:
        raise DataError("--positive-class applies to binary labels only; drop it for a multiclass problem")
    return classes


def encode_label(y, problem_type, wanted_positive="", classes=None):
    """(encoded label, class names in code order or None). Binary: 1 is the positive class. `classes`:
    as agreed over all hosts (default: from these rows)."""
    if problem_type == "regression":
        parsed = as_numbers(y)
        bad = parsed.isna() | np.isinf(parsed)
        if bad.any():
            raise DataError(f"regression label {y.name!r} has a non-numeric value {y[bad].iloc[0]!r} "
                            f"at {_where(y.to_frame(), bad)}")
        return parsed, None
    names = y.astype(str)
    if classes is None:
        classes = label_classes(names.value_counts().to_dict(), problem_type, wanted_positive, y.name)
    codes = {name: i for i, name in enumerate(classes)}
    return names.map(codes).astype("int64"), classes


# --- the split: cut points on hashes, per class ---------------------------------------------------


def check_fractions(validation_fraction, test_fraction):
    if not (0 < validation_fraction and 0 < test_fraction and validation_fraction + test_fraction < 1):
        raise DataError(f"--validation-fraction {validation_fraction} and --test-fraction {test_fraction} must be "
                        f"positive and sum to less than 1")


def cut_points(hashes, strata, names, validation_fraction, test_fraction):
    """{stratum: [test below, validation below]}: the hashes at the ranks where each split ends.

    A row's split then follows from its hash alone (test below the first cut, validation below the second,
    train above), so rows split alike whichever host holds them; per class (strata), each class is split
    in the same proportions, as a stratified split would. None: no cut (every row is below it)."""
    cuts, sizes = {}, {}
    for code, name in enumerate(names):
        ranked = np.sort(hashes[strata == code])
        n = len(ranked)
        n_test = int(round(test_fraction * n))
        n_held = n_test + int(round(validation_fraction * n))
        cuts[name] = [int(ranked[i]) if i < n else None for i in (n_test, n_held)]
        sizes[name] = (n - n_held, n_held - n_test, n_test)
    return cuts, sizes


def rows_needed(validation_fraction, test_fraction):
    """The fewest rows that give every split at least one (as cut_points rounds its shares)."""
    return next(n for n in range(3, 10_000) if round(test_fraction * n) >= 1
                and round(validation_fraction * n) >= 1 and n - round(test_fraction * n) - round(validation_fraction * n) >= 1)


def check_split(sizes, classified):
    """Refuse a split a model cannot use: an empty split, or too few rows for every class to appear."""
    rows = [sum(s[i] for s in sizes.values()) for i in range(3)]
    least = len(sizes) if classified else 1
    short = [(name, count) for name, count in zip(SPLITS, rows) if count < least]
    lacking = [name for name, s in sizes.items() if classified and s[0] == 0]
    if short or lacking:
        why = (f"the {short[0][0]} split would get {short[0][1]} row(s)" + (f" for {least} classes" if classified
                                                                              else "") if short else
               f"class {lacking[0]!r} would have no training row")
        raise DataError(f"cannot split {sum(rows)} rows into train/validation/test: {why}; every class needs a "
                        f"few rows in each split, so add data or merge rare classes")
    return dict(zip(SPLITS, rows))


def assign_splits(hashes, strata, names, cuts):
    """0 train, 1 validation, 2 test for each row, by its hash and its stratum's cut points."""
    out = np.zeros(len(hashes), dtype="int8")
    for code, name in enumerate(names):
        rows = strata == code
        for cut in cuts[name]:
            if cut is None:
                out[rows] += 1
            else:
                out[rows] += hashes[rows] < np.uint64(cut)
    return out


# --- the profile: partial profiles per host, merged on the first --------------------------------


def _number(x):
    return None if x is None or pd.isna(x) else float(x)


def _rounded(x):
    """Sums of floats depend on their order in the last bits; ten digits do not, so hosts agree."""
    return None if x is None or not np.isfinite(x) else float(f"{x:.10g}")


def moments(v):
    """(count, mean, sum of squared deviations, min, max) of float values: mergeable exactly enough."""
    v = np.asarray(v, dtype="float64")
    if not len(v):
        return [0, 0.0, 0.0, None, None]
    mean = float(v.mean())
    return [len(v), mean, float(((v - mean) ** 2).sum()), float(v.min()), float(v.max())]


def merge_moments(parts):
    """Chan's pairwise update: the moments of the union from the moments of the parts."""
    n, mean, m2, low, high = 0, 0.0, 0.0, None, None
    for k, mu, m, lo, hi in parts:
        if not k:
            continue
        delta, total = mu - mean, n + k
        mean, m2 = mean + delta * k / total, m2 + m + delta ** 2 * n * k / total
        n, low, high = total, lo if low is None else min(low, lo), hi if high is None else max(high, hi)
    return n, mean, m2, low, high


def smallest(keys, values=None, k=SAMPLE):
    """The k smallest keys (and their values), sorted: a sample that depends on the rows, not on who holds them."""
    keys = np.asarray(keys, dtype="uint64")
    order = np.argpartition(keys, k)[:k] if len(keys) > k else np.arange(len(keys))
    order = order[np.argsort(keys[order], kind="stable")]
    return keys[order] if values is None else (keys[order], np.asarray(values)[order])


def partial_profile(s, kind, rows, hashes=None):
    """This host's share of one column's profile; `rows` are the row hashes (the sample's keys)."""
    present = s.notna().to_numpy()
    distinct = pd.unique((value_hashes(s) if hashes is None else hashes)[present])
    out = {"count": int(present.sum()), "missing": int((~present).sum()), "distinct": smallest(distinct),
           "all_distinct": len(distinct) <= SAMPLE}
    if kind in ("number", "code", "datetime"):
        values = (to_dates(s[present]).dt.tz_localize(None).to_numpy("datetime64[ns]").view("int64") if kind == "datetime"
                  else s[present].to_numpy(dtype="float64"))
        out["moments"] = moments(values) if kind != "datetime" else \
            [len(values), 0.0, 0.0, *((int(values.min()), int(values.max())) if len(values) else (None, None))]
        out["sample_keys"], out["sample"] = smallest(rows[present], values)
    else:
        counts = as_text(s[present]).value_counts()
        out["counts"] = {str(k): int(v) for k, v in counts.head(SAMPLE).items()}
    return out


def merge_profile(parts, kind):
    """A column's profile from the hosts' partial profiles: the same whatever the host count."""
    count, missing = sum(p["count"] for p in parts), sum(p["missing"] for p in parts)
    distinct = smallest(pd.unique(np.concatenate([np.asarray(p["distinct"], dtype="uint64") for p in parts])))
    exact = all(p["all_distinct"] for p in parts) and len(distinct) < SAMPLE
    # k-minimum-values: the k-th smallest of n well-spread hashes sits near k/n of the way up
    unique = len(distinct) if exact else int(round((SAMPLE - 1) * 2.0**64 / (float(distinct[-1]) + 1)))
    stats = {"kind": kind, "count": count, "missing": missing, "unique": unique,
             **({} if exact else {"unique_estimated": True})}
    if kind in ("number", "code", "datetime"):
        n, mean, m2, low, high = merge_moments(p["moments"] for p in parts)
        _, sample = smallest(np.concatenate([np.asarray(p["sample_keys"], dtype="uint64") for p in parts]),
                             np.concatenate([np.asarray(p["sample"]) for p in parts]))
        typical = np.median(sample) if len(sample) else None
        if kind == "datetime":  # nanoseconds since 1970, exact as integers
            stamp = lambda ns: None if ns is None else str(pd.Timestamp(int(round(ns)), tz="UTC"))  # noqa: E731
            return {**stats, "min": stamp(low), "max": stamp(high), "typical": stamp(typical)}
        std = np.sqrt(m2 / (n - 1)) if n > 1 else None
        return {**stats, "mean": _rounded(mean) if n else None, "std": _rounded(std), "min": _number(low),
                "max": _number(high), "typical": _number(typical)}
    counts = sum((Counter(p["counts"]) for p in parts), Counter())
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
    return {**stats, "top": dict(top), "typical": min(v for v, c in top if c == top[0][1]) if top else None}


def label_share(y, problem_type, classes):
    """This host's share of the label's balance: counts per code, or the moments of a numeric label."""
    if problem_type == "regression":
        return moments(y)
    return np.bincount(np.asarray(y, dtype="int64"), minlength=len(classes)).tolist()


def merge_label(parts, problem_type):
    if problem_type == "regression":
        n, mean, m2, low, high = merge_moments(parts)
        return {"mean": _rounded(mean) if n else None, "std": _rounded(np.sqrt(m2 / (n - 1))) if n > 1 else None,
                "min": _number(low), "max": _number(high)}
    return {str(code): int(sum(p[code] for p in parts)) for code in range(len(parts[0]))}


# --- the hosts of the job, and the one exchange they need ----------------------------------------


class Cluster:
    """The hosts of this processing job (SageMaker's resourceconfig.json) and their one exchange:
    every host sends the first (sorted) host a payload, which answers each, or fails them all with
    the first error any host met. A job of one host exchanges with itself, without a socket."""

    def __init__(self, hosts, current, port=PORT, resolve=socket.gethostbyname):
        self.hosts, self.current, self.port, self.resolve = sorted(hosts), current, port, resolve
        self.index = self.hosts.index(current)
        self._peers = None  # first host: a socket per other host, in host order; others: the first host's

    @classmethod
    def from_config(cls, path):
        """The job's hosts, or this machine alone where no SageMaker config exists (a script run by hand)."""
        try:
            config = json.loads(Path(path).read_text())
        except FileNotFoundError:
            return cls(["algo-1"], "algo-1")
        return cls(config["hosts"], config["current_host"])

    @property
    def size(self):
        return len(self.hosts)

    def exchange(self, compute, answer):
        """compute() here, answer([payload of each host]) -> [reply to each host] on the first host; returns
        this host's reply. A DataError raised by compute or answer fails every host with its message."""
        try:
            payload = compute()
        except DataError as e:
            payload = DataError(f"{self.current}: {e}" if self.size > 1 else str(e))
        if self.index:
            self._connect()
            _send(self._peers, payload)
            reply = _receive(self._peers, self.hosts[0])
        else:
            payloads = [payload] + [_receive(peer, host) for peer, host in zip(self._accept(), self.hosts[1:])]
            failed = next((p for p in payloads if isinstance(p, DataError)), None)
            try:
                replies = [failed] * self.size if failed else answer(payloads)
            except DataError as e:
                replies = [e] * self.size
            for peer, reply in zip(self._peers, replies[1:]):
                _send(peer, reply)
            reply = replies[0]
        if isinstance(reply, DataError):
            raise reply
        return reply

    def _accept(self):
        if self._peers is None and self.size == 1:
            self._peers = []
        if self._peers is None:
            server = socket.create_server((self.resolve(self.current), self.port), reuse_port=False)
            peers = {}
            with server:
                server.settimeout(CONNECT_SECONDS)
                while len(peers) < self.size - 1:
                    try:
                        conn, _ = server.accept()
                    except socket.timeout:
                        raise DataError(f"hosts {', '.join(h for h in self.hosts[1:] if h not in peers)} did not "
                                        f"reach {self.current}:{self.port} within {CONNECT_SECONDS} s") from None
                    conn.settimeout(None)
                    peers[_receive(conn, "a host")] = conn
            self._peers = [peers[h] for h in self.hosts[1:]]
        return self._peers

    def _connect(self):
        if self._peers is None:
            deadline = time.monotonic() + CONNECT_SECONDS
            while True:  # the first host may not be listening yet
                try:
                    self._peers = socket.create_connection((self.resolve(self.hosts[0]), self.port), timeout=10)
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        raise DataError(f"cannot reach the first host {self.hosts[0]}:{self.port} ({e})") from None
                    time.sleep(0.2)
            self._peers.settimeout(None)
            _send(self._peers, self.current)


def _send(sock, obj):
    """JSON with numpy arrays sent as raw bytes after it (no pickle: a peer's bytes are never code)."""
    arrays = []

    def encode(value):
        if isinstance(value, np.ndarray):
            arrays.append(np.ascontiguousarray(value))
            return {"__array__": str(value.dtype), "shape": list(value.shape)}
        if isinstance(value, DataError):
            return {"__error__": str(value)}
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v) for v in value]
        return value.item() if isinstance(value, np.generic) else value

    text = json.dumps(encode(obj)).encode()
    sock.sendall(struct.pack("!Q", len(text)) + text)
    for array in arrays:
        sock.sendall(memoryview(array).cast("B"))


def _receive(sock, host):
    text = _read(sock, struct.unpack("!Q", _read(sock, 8, host))[0], host)

    def decode(value):
        if isinstance(value, dict):
            if "__array__" in value:
                dtype, shape = np.dtype(value["__array__"]), value["shape"]
                return np.frombuffer(_read(sock, dtype.itemsize * int(np.prod(shape)), host), dtype).reshape(shape)
            if "__error__" in value:
                return DataError(value["__error__"])
            return {k: decode(v) for k, v in value.items()}
        return [decode(v) for v in value] if isinstance(value, list) else value

    return decode(json.loads(text))


def _read(sock, size, host):
    buffer, view = bytearray(size), 0
    mv = memoryview(buffer)
    while view < size:
        got = sock.recv_into(mv[view:], size - view)
        if not got:
            raise DataError(f"lost the connection to {host}: it stopped (see its log)")
        view += got
    return buffer


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


def schema_columns(names, label, declared, whole, facts):
    """[{name, kind, source, reason?}] for every column but the label, in file order, from merged facts."""
    columns = []
    for name in names:
        if name == label:
            continue
        if name in declared:
            kind, reason, source = declared[name], "declared" if declared[name] == "dropped" else None, "declared"
        elif whole:
            kind, reason, source = "dropped", "not in the declared schema", "declared"
        else:
            (kind, reason), source = kind_of(facts[name]), "inferred"
        columns.append({"name": name, "kind": kind, "source": source, **({"reason": reason} if reason else {})})
    return columns


def infer_schema(df, label, declared, whole):
    """The schema columns of one frame's rows (a single host's view)."""
    facts = {name: merge_facts([column_facts(df[name])]) for name in df.columns if name != label}
    return schema_columns(df.columns, label, declared, whole, facts)


def _agree_on_rows(payloads, seen):
    """First host: the columns every host's files must have, and the rows another host already holds."""
    with_files = [p for p in payloads if p["files"]]
    if not with_files:
        raise DataError("no host of this job got an input file (.csv, .csv.gz or .parquet); check the "
                        "processing input's S3 URI")
    first = with_files[0]
    for p in with_files[1:]:
        missing = [c for c in first["columns"] if c not in p["columns"]]
        extra = [c for c in p["columns"] if c not in first["columns"]]
        if missing or extra:
            raise DataError(f"{p['files'][0]} does not match the columns of {first['files'][0]}: missing "
                            f"{', '.join(missing) or 'none'}; unexpected {', '.join(extra) or 'none'}")
    held = np.concatenate([p["rows"] for p in payloads])
    repeated = pd.Series(held).duplicated().to_numpy()  # in host order: the first host holding a row keeps it
    seen.update(files=sorted(f for p in payloads for f in p["files"]), read=sum(p["read"] for p in payloads),
                duplicates=sum(p["duplicates"] for p in payloads) + int(repeated.sum()))
    ends = np.cumsum([len(p["rows"]) for p in payloads])[:-1]
    return [{"columns": first["columns"], "drop": drop} for drop in np.split(repeated, ends)]


def _agree_on_schema(payloads, args, seen):
    """First host: the schema, the label's classes and the split's cut points, from every host's facts."""
    rows = sum(p["rows"] for p in payloads)
    seen["label_missing"] = sum(p["label_missing"] for p in payloads)
    if not rows:
        raise DataError(f"no rows with a {args.label!r} value in {', '.join(seen['files'])}")
    names = payloads[0]["names"]
    declared, whole = read_declared(args.schema, [c for c in names if c != args.label])
    facts = {name: merge_facts([p["facts"][name] for p in payloads]) for name in payloads[0]["facts"]}
    columns = schema_columns(names, args.label, declared, whole, facts)
    kept = [c for c in columns if c["kind"] != "dropped"]
    needed = rows_needed(args.validation_fraction, args.test_fraction)
    if rows < needed:  # said before the columns (in so few rows every one looks constant), after the values
        return [{"error": f"{', '.join(seen['files'])} has {rows} row(s) with a {args.label!r} value; splitting "
                          f"into train, validation and test needs at least {needed}",
                 "schema": {"columns": columns}}] * len(payloads)
    if not kept:
        raise DataError(f"no usable column besides the label {args.label!r}: "
                        + "; ".join(f"{c['name']} dropped ({c['reason']})" for c in columns))
    try:  # found wanting only after every host checked its values, as a single host would report it
        classes, cuts = _label_and_cuts(payloads, args, seen)
    except DataError as e:
        return [{"error": str(e), "schema": {"columns": columns}}] * len(payloads)
    schema = {
        "label": {"name": args.label, "kind": label_kind(classes, None), "problem_type": args.problem_type,
                  "classes": classes, **({"positive_class": classes[1]} if args.problem_type == "binary" else {})},
        "columns": columns,
    }
    seen["schema"] = schema
    return [{"schema": schema, "cuts": cuts}] * len(payloads)


def _label_and_cuts(payloads, args, seen):
    """The label's classes (None for regression) and the split's cut points over every host's rows."""
    classes = None
    if args.problem_type != "regression":
        counts = sum((Counter(p["label_counts"]) for p in payloads), Counter())
        classes = label_classes(counts, args.problem_type, args.positive_class, args.label)
    strata = sorted({s for p in payloads for s in p["strata_names"]})
    codes = np.concatenate([np.asarray([strata.index(s) for s in p["strata_names"]], dtype="int32")[p["strata"]]
                            for p in payloads])
    cuts, sizes = cut_points(np.concatenate([p["split"] for p in payloads]), codes, strata,
                             args.validation_fraction, args.test_fraction)
    seen["rows"] = check_split(sizes, classified=bool(classes) and not args.split_key)
    return classes, cuts


def _write_profile(payloads, args, seen, out):
    """First host: the profile merged from every host's partial one, then schema.json beside it."""
    schema = seen["schema"]
    classes, problem = schema["label"]["classes"], args.problem_type
    columns = {c["name"]: {**merge_profile([p["columns"][c["name"]] for p in payloads], c["kind"]),
                           **({"reason": c["reason"]} if "reason" in c else {})} for c in schema["columns"]}
    profile = {
        "problem_type": problem, "label": args.label, "classes": classes,
        "input_files": seen["files"], "hosts": len(payloads),
        "rows_read": seen["read"], "duplicates_dropped": seen["duplicates"],
        "label_missing_dropped": seen["label_missing"], "rows": seen["rows"],
        "seed": args.seed, "validation_fraction": args.validation_fraction, "test_fraction": args.test_fraction,
        **({"split_key": args.split_key} if args.split_key else {}),
        "label_balance": {name: merge_label([p["label"][name] for p in payloads], problem)
                          for name in ("all", *SPLITS)},
        "columns": columns,
    }
    _atomic_write(out / "schema" / "schema.json", json.dumps(schema, indent=2))
    _atomic_write(out / "profile" / "profile.json", json.dumps(profile, indent=2))
    seen["profile"] = profile
    return [None] * len(payloads)


def run(args, cluster=None):
    """Preprocess this host's share of the input, agreeing with the other hosts through the first one."""
    cluster, started = cluster or Cluster.from_config(args.resource_config), time.monotonic()
    check_fractions(args.validation_fraction, args.test_fraction)
    out, seen, local = Path(args.output_dir), {}, {}

    def keep(mask):
        """Only the rows of mask, in the frame and in what was computed of its columns."""
        if mask.all():
            return
        df = local["df"][mask]  # the numbers share its index object: pandas 2 compares unshared ones whole
        local.update(df=df, rows=local["rows"][mask],
                     numbers={c: pd.Series(v.to_numpy()[mask], index=df.index) for c, v in local["numbers"].items()},
                     hashes={c: v[mask] for c, v in local["hashes"].items()})

    def read():
        files = list_inputs(args.input_dir, required=cluster.size == 1)
        raw = read_inputs(files, args.label)
        numbers = {c: as_numbers(raw[c]) for c in raw.columns}  # parsed once, used by every step
        hashes = {c: value_hashes(raw[c], numbers[c]) for c in raw.columns}
        rows = row_hashes([hashes[c] for c in sorted(raw.columns)], len(raw))  # by name: files may order them otherwise
        repeated = pd.Series(rows).duplicated().to_numpy()
        local.update(df=raw, rows=rows, numbers=numbers, hashes=hashes, read=len(raw), unique=~repeated)
        return {"files": [str(f) for f in files], "columns": list(raw.columns), "rows": rows[~repeated],
                "read": len(raw), "duplicates": int(repeated.sum())}

    agreed = cluster.exchange(read, lambda payloads: _agree_on_rows(payloads, seen))

    def facts():
        kept = local["unique"]  # the rows of this host no row before it repeats, here or on another host
        kept[kept] = ~np.asarray(agreed["drop"], dtype=bool)
        labelled = local["df"][args.label].notna().to_numpy()
        label_missing = int((kept & ~labelled).sum())
        keep(kept & labelled)  # one copy of the frame, of every row to keep
        df, rows, numbers, hashes = local["df"].reindex(columns=agreed["columns"]), local["rows"], local["numbers"], \
            local["hashes"]
        if args.split_key and args.split_key not in df.columns or args.split_key == args.label:
            raise DataError(f"--split-key {args.split_key!r} is not a column of the input besides the label "
                            f"(columns: {', '.join(df.columns)})")
        declared, whole = read_declared(args.schema, [c for c in df.columns if c != args.label])
        split = mix(hashes[args.split_key] if args.split_key else rows, args.seed + 1)
        names = as_text(df[args.label])
        strata, strata_names = (pd.factorize(names) if args.problem_type != "regression" and not args.split_key
                                else (np.zeros(len(df), dtype="int64"), [""]))
        local.update(df=df, split=split)
        return {"names": list(df.columns), "rows": len(df), "label_missing": label_missing,
                "facts": {} if whole else {c: column_facts(df[c], numbers.get(c), hashes.get(c)) for c in df.columns
                                           if c != args.label and c not in declared},
                "label_counts": names.value_counts().to_dict() if args.problem_type != "regression" else {},
                "strata_names": [str(s) for s in strata_names], "strata": strata.astype("int32"), "split": split}

    plan = cluster.exchange(facts, lambda payloads: _agree_on_schema(payloads, args, seen))

    def write():
        df, rows, schema, numbers = local["df"], local["rows"], plan["schema"], local["numbers"]
        kept = [c for c in schema["columns"] if c["kind"] != "dropped"]
        df = df.assign(**{c["name"]: parse_column(df, c["name"], c["kind"], numbers.get(c["name"])) for c in kept})
        if "error" in plan:
            if args.problem_type == "regression":
                encode_label(df[args.label], args.problem_type)  # a label that is no number is named first
            raise DataError(plan["error"])
        y, classes = encode_label(df[args.label], args.problem_type, args.positive_class, schema["label"]["classes"])
        strata_names = sorted(plan["cuts"])
        strata = (pd.Categorical(as_text(df[args.label]), categories=strata_names).codes
                  if len(strata_names) > 1 or strata_names != [""] else np.zeros(len(df), dtype="int8"))
        splits = assign_splits(local["split"], np.asarray(strata), strata_names, plan["cuts"])
        table = part_table(df, y, kept, args.label, args.problem_type)
        local["parts"] = write_parts(out, table, splits, rows, cluster.current, args.parts_per_host)
        y = y.to_numpy()
        return {"columns": {c["name"]: partial_profile(df[c["name"]], c["kind"], rows, local["hashes"].get(c["name"]))
                            for c in schema["columns"]},
                "label": {"all": label_share(y, args.problem_type, classes),
                          **{name: label_share(y[splits == i], args.problem_type, classes)
                             for i, name in enumerate(SPLITS)}}}

    try:
        cluster.exchange(write, lambda payloads: _write_profile(payloads, args, seen, out))
    except DataError:
        for temporary, _ in local.get("parts", []):
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in local["parts"]:
        os.replace(temporary, final)
    seconds = time.monotonic() - started  # what sizing an instance needs: this host's rate and memory
    print(f"{cluster.current}: {local['read']} rows in {seconds:.1f} s ({local['read'] / seconds:.0f} rows/s), "
          f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
    if cluster.index == 0:
        profile = seen["profile"]
        dropped = [c["name"] for c in seen["schema"]["columns"] if c["kind"] == "dropped"]
        print(f"rows read {profile['rows_read']}, duplicates dropped {profile['duplicates_dropped']}, missing labels "
              f"dropped {profile['label_missing_dropped']}, split {profile['rows']}; columns kept "
              f"{len(seen['schema']['columns']) - len(dropped)}, dropped {len(dropped)}"
              + (f" ({', '.join(dropped)})" if dropped else "") + f"; {cluster.size} host(s)")
        return profile
    return None


def part_table(df, y, kept, label, problem_type):
    """The label first, then the used columns, typed the same on every host so the parts read as one table:
    numbers as float64, everything else as text (the model parses it by the schema)."""
    numeric = lambda c: c["kind"] in ("number", "code")  # noqa: E731
    schema = pa.schema([(label, pa.int64() if problem_type != "regression" else pa.float64())]
                       + [(c["name"], pa.float64() if numeric(c) else pa.string()) for c in kept])
    arrays = [pa.array(y.to_numpy())] + [
        pa.array(df[c["name"]].to_numpy(dtype="float64", na_value=np.nan)) if numeric(c)
        else pa.array(as_text(df[c["name"]]), from_pandas=True) for c in kept]
    return pa.Table.from_arrays([a.cast(f.type) for a, f in zip(arrays, schema)], schema=schema)


def write_parts(out, table, splits, rows, host, parts):
    """Each split's rows as `parts` Parquet files named after this host (rows spread by their hash), under
    temporary names: [(temporary, final)], renamed once every host has succeeded."""
    parts = max(1, parts)
    group = splits.astype("int64") * parts + (rows % np.uint64(parts)).astype("int64")
    order = np.argsort(group, kind="stable")  # one copy of the table, then a zero-copy slice per file
    table, ends = table.take(order), np.cumsum(np.bincount(group, minlength=len(SPLITS) * parts))
    written = []
    for g, (start, end) in enumerate(zip(np.concatenate([[0], ends[:-1]]), ends)):
        if end > start:
            final = out / SPLITS[g // parts] / f"part-{host}-{g % parts}.parquet"
            final.parent.mkdir(parents=True, exist_ok=True)
            written.append((final.with_name(f".{final.name}.tmp"), final))
            pq.write_table(table.slice(start, end - start), written[-1][0])
    return written


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
