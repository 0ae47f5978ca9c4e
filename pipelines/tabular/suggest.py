"""Which approach fits a table, and why: the tabular pipeline's `suggest`, measured on a sample.

It reads a sample spread over the whole input (blocks at evenly spaced byte offsets of each CSV file,
evenly spaced row groups of Parquet), so it answers in seconds on a million rows and is not fooled by a
file sorted by its label. Column kinds, identifiers, constants and free text are judged by Preprocess's
own rule (`processing_scripts.preprocess.kind_of`), so what it says will be dropped is what a run drops.
The label decides the problem type; a label that is absent, too sparse, an identifier or free text makes
it a segmentation problem, or one that needs labeling first.
"""
from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines.inputs import InputError
from pipelines.tabular.inputs import MANIFESTS, MANY_CLASSES, TABLES, first_table, head, missing_label
from pipelines.tabular.problems import DEFAULT_THRESHOLD, PROBLEMS

SAMPLE_ROWS = 20_000  # rows read at most, over every file
BLOCKS = 40  # places in a CSV file the sample is read from
WHOLE_FILE_BYTES = 4 << 20  # a file this small is read whole: its counts are exact
MIN_LABELED_ROWS = 100  # fewer labeled rows than this (estimated over the input): label first
MIN_CLASS_ROWS = 30  # a class with fewer rows than this cannot be split, trained and tested on
MAX_CLASSES = 100  # more text classes than this, most of them rare: names, not classes
SMALL_TABLE = 1_000  # rows below which the test split is a few hundred rows: a noisy gate


@dataclass
class Suggestion:
    """What `suggest` found, and what it recommends (None: label first)."""

    input: str
    label: str | None
    problem_type: str | None
    rows_sampled: int
    rows_estimated: int
    exact: bool  # every row was read
    missing_share: float  # of all values in the sample
    columns: list[dict] = field(default_factory=list)  # name, kind, missing share, why dropped
    label_profile: dict | None = None
    reasons: list[str] = field(default_factory=list)
    gate: dict | None = None  # metric and why
    needs_labels: bool = False
    verdict: str = ""  # the reason that decided it
    run: list[str] = field(default_factory=list)  # the arguments of `run --local`, after the program's name

    def as_dict(self) -> dict:
        return asdict(self)


def suggest_table(path: Path, label: str = "") -> Suggestion:
    """The approach for the table at `path` (a file or a folder of them), predicting `label` (or none)."""
    import processing_scripts.preprocess as pre  # pandas: imported only when a table is looked at

    table = first_table(path)
    if table.name.endswith(MANIFESTS):
        raise InputError(f"{table} is a Ground Truth output manifest: its classes come from the labeling job, so "
                         f"the problem type follows from them; run it with --label-attribute NAME (and "
                         f"--problem-type binary|multiclass, or let run --local choose by the class count)")
    header, _ = head(table, label)
    if label and label not in header:
        missing_label(table, label, header)
    df, estimated, exact = sample(path)
    columns, dropped = [], {}
    for name in df.columns:
        kind, why = ("label", None) if name == label else pre.kind_of(pre.merge_facts([pre.column_facts(df[name])]))
        share = float(df[name].isna().mean()) if len(df) else 0.0
        columns.append({"name": name, "kind": kind, "missing_share": round(share, 4), "dropped": why})
        if why:
            dropped[name] = why
    missing = float(df.isna().to_numpy().mean()) if df.size else 0.0
    out = Suggestion(str(path), label or None, None, len(df), estimated, exact, round(missing, 4), columns)
    size = f"{len(df):,} rows" if exact else f"about {estimated:,} rows (estimated from {len(df):,} sampled " \
                                              f"across the input and its size)"
    out.reasons.append(f"size: {size}, {len(header)} columns" + (
        f"; under {SMALL_TABLE:,} rows the test split is small and the gate's measurement noisy"
        if estimated < SMALL_TABLE else ""))
    out.reasons.extend(_column_reasons(columns, dropped, missing, label))
    if label:
        _with_label(out, df[label], estimated, pre)
    else:
        _without_label(out, "no label was given")
    if out.problem_type:
        supervised = out.problem_type != "clustering"
        out.run = ["--input-data", str(path), *(["--label", label] if label and supervised else []),
                   "--problem-type", out.problem_type]
        if out.problem_type in PROBLEMS:
            out.gate = gate(out.problem_type, out.label_profile)
    return out


def _column_reasons(columns: list[dict], dropped: dict[str, str], missing: float, label: str) -> list[str]:
    out = []
    for what in ("identifier", "free text", "constant", "empty"):
        names = [n for n, why in dropped.items() if why.startswith(what)]
        if names:
            out.append(f"{what} column{'s' if len(names) > 1 else ''} {', '.join(names)}: Preprocess drops "
                       f"{'them' if len(names) > 1 else 'it'} ({dropped[names[0]]})")
    worst = max((c for c in columns if c["name"] != label), key=lambda c: c["missing_share"], default=None)
    if worst and worst["missing_share"] > 0:
        out.append(f"missing values: {missing:.1%} of all values; most in {worst['name']} "
                   f"({worst['missing_share']:.1%}); XGBoost learns from missing values as they are")
    else:
        out.append("missing values: none in the sample")
    return out


def _with_label(out: Suggestion, y, rows: int, pre) -> None:
    present = y.dropna()
    labeled = len(present) / len(y) if len(y) else 0.0
    labeled_rows = round(labeled * rows)
    counts = Counter(str(v) for v in present)
    classes = pre.class_order(counts)
    numbers = pre.as_numbers(present)
    numeric = bool(len(present)) and bool(numbers.notna().all())
    whole = numeric and bool((numbers % 1 == 0).all())
    kind, why = pre.kind_of(pre.merge_facts([pre.column_facts(y)]))
    out.label_profile = {"kind": kind, "distinct": len(counts), "labeled_share": round(labeled, 4),
                         "numeric": numeric, "whole_numbers": whole,
                         "classes": {c: round(counts[c] / len(present), 4) for c in classes[:MAX_CLASSES]}
                         if len(counts) <= MAX_CLASSES else None}
    name = repr(out.label)
    if labeled < 1:
        out.reasons.append(f"label {name}: {1 - labeled:.1%} of rows have none (Preprocess drops them), "
                           f"about {labeled_rows:,} labeled rows")
    if labeled_rows < MIN_LABELED_ROWS:
        return _needs_labels(out, f"label {name} is too sparse to learn from: about {labeled_rows:,} labeled "
                                  f"rows, fewer than {MIN_LABELED_ROWS}")
    if len(counts) < 2:
        return _needs_labels(out, f"label {name} has a single value ({classes[0]!r}): there is nothing to tell "
                                  f"apart")
    if why and why.startswith("identifier") and (not numeric or numbers.max() - numbers.min() < 2 * rows):
        # a different value in every row, and (numbers) about as many values as rows: 1, 2, 3... not prices
        return _needs_labels(out, f"label {name} is an identifier ({why}), not something to predict")
    if why and why.startswith("free text"):
        return _needs_labels(out, f"label {name} is free text (long values of several words), not classes")
    if numeric and (not whole or len(counts) > MANY_CLASSES):
        spread = f"from {numbers.min():g} to {numbers.max():g}, median {numbers.median():g}"
        return _decide(out, "regression", f"label {name} is a quantity: {len(counts):,} distinct "
                                          f"{'whole ' if whole else ''}numbers {spread} (more than {MANY_CLASSES} "
                                          f"values are an amount, not classes)")
    rare = sum(1 for c in classes if counts[c] / len(present) * labeled_rows < MIN_CLASS_ROWS)
    if len(counts) > MAX_CLASSES or rare > len(counts) / 2:
        return _needs_labels(out, f"label {name} has {len(counts):,} distinct values, {rare:,} of them in fewer "
                                  f"than {MIN_CLASS_ROWS} rows: too many, too rare to learn as classes")
    shares = sorted(((counts[c] / len(present), c) for c in classes), reverse=True)
    (top, major), (low, minor) = shares[0], shares[-1]
    rarest = round(low * labeled_rows)
    if rarest < MIN_CLASS_ROWS:
        return _needs_labels(out, f"label {name}: class {minor!r} has about {rarest} rows, fewer than "
                                  f"{MIN_CLASS_ROWS}: too few to split into train, validation and test")
    if len(counts) == 2:
        return _decide(out, "binary", f"label {name} has 2 values ({', '.join(map(repr, classes))}): binary; "
                                      f"the minority class {minor!r} is {low:.1%} of labeled rows (about {rarest:,})"
                                      + ("; imbalanced, which ROC AUC is not fooled by" if low < 0.2 else ""))
    scale = "whole numbers" if numeric else "names"
    return _decide(out, "multiclass", f"label {name} has {len(counts)} classes ({scale}; up to {MANY_CLASSES} "
                                      f"numbers count as classes): multiclass; the largest {major!r} is {top:.1%}, "
                                      f"the smallest {minor!r} {low:.1%} (about {rarest:,} rows)")


def _decide(out: Suggestion, problem_type: str, why: str) -> None:
    out.problem_type, out.verdict = problem_type, why
    out.reasons.append(why)


def _needs_labels(out: Suggestion, why: str) -> None:
    out.verdict = why
    out.reasons.append(why)
    _without_label(out, "there is no usable label")


def _without_label(out: Suggestion, why: str) -> None:
    """No label to learn from: segmentation when the pipeline can find segments, and labeling first."""
    out.needs_labels = True
    out.verdict = out.verdict or why
    if why == "no label was given":
        out.reasons.append(f"{why}: there is no column to learn to predict")
    if "clustering" in PROBLEMS:
        out.problem_type = "clustering"
        out.reasons.append("segmentation (k-means on the features Preprocess builds) finds groups of similar rows "
                           "without a label")
    out.reasons.append("label rows first: a SageMaker Ground Truth labeling job, whose output manifest is then "
                       "--input-data with --label-attribute NAME")


GATE_WHY = {
    "binary": "ROC AUC: how well the model ranks the positive class above the other at every threshold, unmoved "
              "by class balance; the baseline (a constant predictor) scores 0.5",
    "multiclass": "accuracy: the share of rows given their class; the baseline always answers the largest class",
    "regression": "R²: the share of the label's variance the model explains; the baseline, predicting the "
                  "training mean, scores 0",
}


def gate(problem_type: str, profile: dict | None) -> dict:
    """The metric the quality gate reads for `problem_type`, and why it is that one."""
    problem = PROBLEMS[problem_type]
    why = GATE_WHY[problem_type]
    classes = (profile or {}).get("classes") or {}
    if problem_type == "binary" and classes:
        majority = max(classes.values())
        why += f" (accuracy would give {majority:.1%} for always answering the majority class)"
    if problem_type == "multiclass" and classes:
        top = max(classes, key=classes.get)
        why += f", {top!r}, which is right for {classes[top]:.1%} of rows"
    return {"metric": problem.gate_metric, "direction": problem.gate_direction,
            "why": f"{why}; by default the gate asks for {DEFAULT_THRESHOLD}, 10% of the way from the baseline "
                   f"to a perfect score (QualityThreshold)"}


# --- the sample -----------------------------------------------------------------------------------


def sample(path: Path):
    """(a frame of text values, missing as None, of at most SAMPLE_ROWS rows spread over the input; the
    estimated number of rows of the whole input; whether every row was read)."""
    import pandas as pd
    import processing_scripts.preprocess as pre

    files = _tables(path)
    each = max(1, SAMPLE_ROWS // len(files))
    header, rows, estimated, exact = None, [], 0, True
    for file in files:
        names, got, total, whole = _parquet_rows(file, each) if file.name.endswith(".parquet") else \
            _csv_rows(file, each)
        if header is None:
            header = names
        elif names != header:
            raise InputError(f"{file} does not have the columns of {files[0]}: every file of a folder must")
        rows += got
        estimated += total
        exact = exact and whole
    missing = frozenset(pre.MISSING_SPELLINGS)  # as Preprocess's CSV reader sees them: exact spellings
    frame = pd.DataFrame([[None if v is None or v in missing else v for v in row] for row in rows],
                         columns=header, dtype=object)
    if not len(frame):
        raise InputError(f"{files[0]} has a header but no data rows; check that the whole file was written")
    return frame, max(estimated, len(frame)), exact


def _tables(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(TABLES)
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        return found or [first_table(path)]  # first_table says what is wrong
    return [first_table(path)]


def _csv_rows(file: Path, wanted: int) -> tuple[list[str], list[list[str]], int, bool]:
    """(header, up to `wanted` rows from BLOCKS places of the file, estimated rows in it, every row read?).
    A small file is read whole and its rows thinned evenly; a .gz cannot be read from the middle, so its
    first rows are the sample and its row count a guess from how far into the file they went."""
    size = file.stat().st_size
    if file.name.endswith(".gz"):
        with open(file, "rb") as raw, gzip.open(raw, "rt", encoding="utf-8-sig", errors="replace", newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            rows = [row for _, row in zip(range(wanted + 1), reader) if row]
            whole = len(rows) <= wanted
            estimated = len(rows) if whole else round(len(rows) * size / max(1, raw.tell()))
        return header, [r for r in rows[:wanted] if len(r) == len(header)], estimated, whole
    if size <= WHOLE_FILE_BYTES:
        with open(file, encoding="utf-8-sig", errors="replace", newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            rows = [row for row in reader if row]
        every = rows if len(rows) <= wanted else [rows[i * len(rows) // wanted] for i in range(wanted)]
        return header, [r for r in every if len(r) == len(header)], len(rows), len(rows) <= wanted
    with open(file, "rb") as f:
        first = f.readline()
        header = [h.strip() for h in next(csv.reader([first.decode("utf-8-sig", errors="replace")]))]
        per_block, rows, read, lines = max(1, wanted // BLOCKS), [], 0, 0
        body = size - len(first)
        for block in range(BLOCKS):
            f.seek(len(first) + body * block // BLOCKS)
            if block:
                f.readline()  # the rest of a line begun before this offset
            chunk = [line for line in (f.readline() for _ in range(per_block)) if line]
            read += sum(len(line) for line in chunk)
            lines += len(chunk)
            rows += [r for r in csv.reader(io.StringIO(b"".join(chunk).decode("utf-8", errors="replace")))
                     if len(r) == len(header)]
    return header, rows, round(body / max(1, read) * lines), False


def _parquet_rows(file: Path, wanted: int) -> tuple[list[str], list[list[str]], int, bool]:
    """(header, up to `wanted` rows from evenly spaced row groups, the rows in the file, read whole?)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(file)
    except Exception as e:  # pyarrow's errors say what is wrong with the file
        raise InputError(f"{file} cannot be read as Parquet: {e}") from None
    total, groups = pf.metadata.num_rows, pf.metadata.num_row_groups
    header = list(pf.schema_arrow.names)
    per = max(1, wanted // max(1, min(groups, BLOCKS)))
    picked = sorted({g * groups // min(groups, BLOCKS) for g in range(min(groups, BLOCKS))}) if groups else []
    rows = []
    for g in picked:
        batch = pf.read_row_group(g).slice(0, per).to_pylist()
        rows += [["" if r[c] is None else str(r[c]) for c in header] for r in batch]
    return header, rows[:wanted], total, len(rows) >= total
