"""Features built from the schema of the data, fitted on the training rows and saved with the model.

Preprocess writes `schema.json`: each raw column's kind (number, code, category,
boolean, datetime, or dropped) and the label. `Features.fit` learns what the
training rows teach (the vocabulary of each category) and `transform` turns raw
rows, as text or typed, into XGBoost's input:

- numbers are kept, missing values included (XGBoost learns where they go);
- codes and string categories become XGBoost categories over a stored
  vocabulary; a value outside it becomes missing and is counted as unseen;
- booleans in any common spelling become 1/0;
- dates become their parts (year, month, day, weekday, hour, days since 1970).

A named feature set (feature_sets/<name>.py) adds domain features on top. It
applies when the table has the columns it reads; otherwise the model records
why it did not. train.py and inference.py both use this module, and train.py
copies it into the model archive, so serving can never drift from training.

Two ways in, one result. `transform` reads a frame, column by column in pandas:
training, evaluation and large requests. `transform_columns` reads a small
request's values ({column: [value]}) straight into the float array, without a
frame (pandas' per-column overhead was most of a 10-row request's cost). It
parses numbers with the frame path's own function and shares its vocabularies,
spellings and feature set; where it cannot vouch for reading a value as the
frame path would (an unusual type, a value the frame path refuses, a feature
set without an array form), it raises `Decline` and the caller uses
`transform`. tests/test_serving_paths.py holds the two equal, bit for bit.
"""
import importlib
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # feature_sets/ beside this file, also in the model archive's code/

# The spellings preprocess.py recognises (tests/test_schema.py checks that the two lists agree).
TRUE_SPELLINGS = frozenset({"true", "t", "yes", "y", "1", "1.0", "on"})
FALSE_SPELLINGS = frozenset({"false", "f", "no", "n", "0", "0.0", "off"})
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "days")
# The most frequent values of a category that get their own code; rarer ones count as unseen.
MAX_CATEGORIES = 1000
NO_FEATURE_SET = ("", "none")
MIXED_FORMATS = int(pd.__version__.split(".")[0]) >= 2  # pandas 1 reads each value on its own anyway


class FeatureError(ValueError):
    """A raw column is absent or holds a value of the wrong kind; the message names both."""


class Decline(Exception):
    """The fast path cannot vouch for reading these values as `transform` does: read them with `transform`."""


def number(s):
    """Numbers (float64); text that is not a number is an error naming the column and the value."""
    out = pd.to_numeric(s, errors="coerce")
    bad = out.isna() & s.notna()
    if bad.any():
        raise FeatureError(f"column {s.name!r} must be numeric; got {s[bad].iloc[0]!r}")
    return out.astype("float64")


def boolean(s):
    """1.0/0.0 from True/False or any spelling of them (yes/no, y/n, t/f, 1/0, on/off), missing kept."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    text = s.astype("string").str.strip().str.lower()
    out = pd.Series(np.where(text.isin(TRUE_SPELLINGS).fillna(False), 1.0,
                             np.where(text.isin(FALSE_SPELLINGS).fillna(False), 0.0, np.nan)), index=s.index)
    bad = out.isna() & s.notna()
    if bad.any():
        raise FeatureError(f"column {s.name!r} must be true/false (or yes/no, 1/0, ...); got {s[bad].iloc[0]!r}")
    return out


def dates(s):
    """Timestamps (UTC); text that is not a date is an error naming the column and the value."""
    out = to_dates(s)
    bad = out.isna() & s.notna()
    if bad.any():
        raise FeatureError(f"column {s.name!r} must be a date or time; got {s[bad].iloc[0]!r}")
    return out


def to_dates(s):
    """Timestamps (UTC), NaT where a value is not a date: preprocess.to_dates, which decided the kind."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": reading each value is the point
        out = pd.to_datetime(s, errors="coerce", utc=True)  # fast: one format, guessed from the first value
        retry = out.isna() & s.notna()
        if retry.any() and MIXED_FORMATS:  # mixed formats in one column (a date here, a date and time there)
            out[retry] = pd.to_datetime(s[retry], errors="coerce", utc=True, format="mixed")
    return out


def category_keys(s, kind):
    """The text a category value is known by: codes as whole numbers ('3', never '3.0')."""
    if kind == "code":
        return pd.Series([code_key(v) for v in number(s).tolist()], index=s.index, dtype=object)
    return s.astype("string").str.strip().astype(object).where(s.notna(), None)


def code_key(v):
    """A code's text from its number (a Python float): '3' for 3.0, None for missing."""
    return None if v != v else str(int(v)) if v % 1 == 0 else str(v)


class Features:
    """How raw columns become the model's features: fitted once on training rows, saved with the model."""

    def __init__(self, label, columns, vocabularies=None, feature_set=None):
        self.label = label
        self.columns = columns  # [{"name", "kind"}] of the schema, dropped ones included, in file order
        self.vocabularies = vocabularies or {}
        self.feature_set = feature_set or {"name": None, "applied": False}
        self._plugin = _load_feature_set(self.feature_set["name"]) if self.feature_set["applied"] else None
        self.kinds = {c["name"]: c["kind"] for c in columns if c["kind"] != "dropped"}
        if self._plugin is not None:
            self.kinds.update({name: kind for name, kind in self._plugin.KINDS.items()
                               if name in self.kinds and _source(columns, name) == "inferred"})
        self.names, self.types = self._layout()
        self._index = {name: {value: i for i, value in enumerate(vocabulary)}
                       for name, vocabulary in self.vocabularies.items()}
        self._at = {name: i for i, name in enumerate(self.names)}

    # -- fitting and saving --

    @classmethod
    def fit(cls, schema, raw, feature_set=None, combine=None):
        """The features of `schema` (a schema.json), with category vocabularies learnt from `raw`.

        combine: where other hosts hold the other rows, a function from this host's value counts to every
        host's (distributed.Cluster.allgather), so all learn one vocabulary from the counts' sum."""
        label, columns = schema["label"]["name"], schema["columns"]
        applied, reason = _applies(feature_set, columns, label)
        name = None if feature_set in NO_FEATURE_SET else feature_set
        spec = cls(label, columns, feature_set={"name": name, "applied": applied, "reason": reason})
        counts = {name: category_keys(raw[name], kind).dropna().value_counts().to_dict()
                  for name, kind in spec.kinds.items() if kind in ("code", "category")}
        shares = combine(counts) if combine else [counts]
        return cls(label, columns, {name: _vocabulary([share[name] for share in shares]) for name in counts},
                   spec.feature_set)

    def to_dict(self):
        return {"label": self.label, "columns": self.columns, "kinds": self.kinds, "names": self.names,
                "types": self.types, "vocabularies": self.vocabularies, "feature_set": self.feature_set}

    @classmethod
    def from_dict(cls, doc):
        return cls(doc["label"], doc["columns"], doc["vocabularies"], doc["feature_set"])

    # -- the raw columns a request carries --

    @property
    def input_columns(self):
        """Every raw column of the schema but the label, in file order (what a header-less CSV row holds)."""
        return [c["name"] for c in self.columns]

    @property
    def required(self):
        """The raw columns the model reads; a request without one of them is refused."""
        return list(self.kinds)

    def missing(self, df):
        return [c for c in self.required if c not in df.columns]

    # -- transforming --

    def transform(self, raw):
        """(float64 feature frame with columns `names`, {column: count of values outside its vocabulary})."""
        missing = self.missing(raw)
        if missing:
            raise FeatureError(f"missing required column(s): {', '.join(missing)}")
        out, unseen, keyed = {}, {}, {}
        for name, kind in self.kinds.items():
            s = raw[name]
            if kind == "number":
                out[name] = number(s)
            elif kind == "boolean":
                out[name] = boolean(s)
            elif kind == "datetime":
                out.update(_date_parts(name, dates(s)))
            else:
                keys = category_keys(s, kind)
                out[name], count = _codes(keys, self._index[name])
                if count:
                    unseen[name] = count
                keyed[name] = keys
        if self._plugin is not None:
            if self.arrays:
                parsed = {**{n: out[n].to_numpy() for n in self._parsed_kinds},
                          **{n: keys.to_numpy(dtype=object) for n, keys in keyed.items()}}
                blank = np.full(len(raw), np.nan)
            else:  # the older form: Series, categories as they came
                parsed = {**{n: v for n, v in out.items() if n in self.kinds},
                          **{n: raw[n] for n in keyed}}
                blank = pd.Series(np.nan, index=raw.index)
            parsed[self.label] = blank  # a label it reads is blanked, never leaked
            out.update({k: pd.Series(np.asarray(v, dtype="float64"), index=raw.index)
                        for k, v in self._plugin.add(parsed).items()})
        return pd.DataFrame(out, index=raw.index)[self.names], unseen

    @property
    def _parsed_kinds(self):
        """The columns a feature set gets parsed (numbers and booleans; categories come as their keys)."""
        return [n for n, kind in self.kinds.items() if kind in ("number", "boolean")]

    @property
    def arrays(self):
        """Whether the feature set (if any) declares the array form (ARRAYS = True), which the fast path needs."""
        return self._plugin is None or getattr(self._plugin, "ARRAYS", False)

    def transform_columns(self, columns, rows):
        """(float64 array of `rows` x `names`, unseen counts) from {column: [raw value]}: text (None where
        missing) or JSON's values. Equal to `transform` of the same values as a frame, bit for bit; raises
        Decline where it cannot vouch for that (the frame path then reads them, or names what is wrong)."""
        if not self.arrays or rows == 0 or any(name not in columns for name in self.kinds):
            raise Decline()
        out, at = np.empty((rows, len(self.names))), self._at
        numeric = [n for n, kind in self.kinds.items() if kind in ("number", "code")]
        parsed = dict(zip(numeric, np.split(_numbers([columns[n] for n in numeric]), len(numeric)))) \
            if numeric else {}
        keyed, unseen = {}, {}
        for name, kind in self.kinds.items():
            values = columns[name]
            if kind == "number":
                out[:, at[name]] = parsed[name]
            elif kind == "boolean":
                parsed[name] = np.array([_boolean(v) for v in values], dtype="float64")
                out[:, at[name]] = parsed[name]
            elif kind == "datetime":
                if any(v is not None and not isinstance(v, str) for v in values):
                    raise Decline()
                try:
                    stamps = dates(pd.Series(values, dtype=object, name=name))
                except FeatureError:
                    raise Decline() from None
                for part, v in _date_parts(name, stamps).items():
                    out[:, at[part]] = v.to_numpy()
            else:
                keys = [code_key(v) for v in parsed[name].tolist()] if kind == "code" else [_key(v) for v in values]
                index = self._index[name]
                out[:, at[name]] = [index.get(k, np.nan) if k is not None else np.nan for k in keys]
                count = sum(k is not None and k not in index for k in keys)
                if count:
                    unseen[name] = count
                keyed[name] = np.array(keys, dtype=object)
        if self._plugin is not None:
            arrays = {**{n: parsed[n] for n in self._parsed_kinds}, **keyed, self.label: np.full(rows, np.nan)}
            for k, v in self._plugin.add(arrays).items():
                out[:, at[k]] = v
        return out, unseen

    def _layout(self):
        names, types = [], []
        for name, kind in self.kinds.items():
            parts = [f"{name}_{part}" for part in DATE_PARTS] if kind == "datetime" else [name]
            names += parts
            types += ["c" if kind in ("code", "category") else "q"] * len(parts)
        if self._plugin is not None:
            clash = sorted(set(self._plugin.FEATURES) & set(names))
            if clash:
                raise FeatureError(f"feature set {self.feature_set['name']!r} adds feature(s) named like raw "
                                   f"columns: {', '.join(clash)}")
            names += list(self._plugin.FEATURES)
            types += ["q"] * len(self._plugin.FEATURES)
        return names, types


def _source(columns, name):
    """Whether a column's kind was inferred or declared (a feature set re-types inferred columns only)."""
    return next((c.get("source", "inferred") for c in columns if c["name"] == name), None)


def _vocabulary(shares):
    """Values by frequency (then alphabetically), the MAX_CATEGORIES most frequent, over hosts' value counts."""
    counts = sum(map(Counter, shares), Counter())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [str(value) for value, _ in ranked[:MAX_CATEGORIES]]


def _codes(keys, index):
    """(category codes 0..k-1, missing where unseen; the number of unseen values), `index` {value: code}."""
    codes = keys.map(index).astype("float64")
    return codes, int((codes.isna() & keys.notna()).sum())


# --- the fast path's readers: each vouches for a value read as the frame path reads it, or declines ----------

_EXACT_INTEGER = 2 ** 53


def _numbers(columns):
    """Float64 values of several columns at once, by the frame path's own parser (pd.to_numeric)."""
    flat = np.array([v for values in columns for v in values], dtype=object)
    for v in flat:
        if v is None or isinstance(v, float):
            continue
        if isinstance(v, str):
            # An integer of 16 or more digits is read exactly as a whole column of integers, rounded otherwise
            if len(v) >= 16 and v.strip().lstrip("+-").isdigit():
                raise Decline()
        elif isinstance(v, bool) or not isinstance(v, int) or abs(v) >= _EXACT_INTEGER:
            raise Decline()
    out = pd.to_numeric(flat, errors="coerce").astype("float64")
    if np.isnan(out).any() and any(v is not None and o != o for v, o in zip(flat, out)):
        raise Decline()  # a value the frame path refuses (or JSON's NaN): it names it
    return out


def _boolean(v):
    if v is None:
        return np.nan
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and v in (0, 1):
        return float(v)
    if isinstance(v, str) and v.isascii():  # pandas' lower() and Python's differ outside ASCII
        text = v.strip().lower()
        if text in TRUE_SPELLINGS:
            return 1.0
        if text in FALSE_SPELLINGS:
            return 0.0
    raise Decline()


def _key(v):
    """A category's key as category_keys makes it; only text is vouched for (pandas writes JSON's numbers
    by the column's type)."""
    if v is None:
        return None
    if not isinstance(v, str):
        raise Decline()
    return v.strip()


def _date_parts(name, stamps):
    days = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
    parts = {"year": stamps.dt.year, "month": stamps.dt.month, "day": stamps.dt.day,
             "weekday": stamps.dt.day_of_week, "hour": stamps.dt.hour, "days": days}
    return {f"{name}_{part}": parts[part].astype("float64") for part in DATE_PARTS}


def _load_feature_set(name):
    try:
        return importlib.import_module(f"feature_sets.{name}")
    except ModuleNotFoundError:
        known = sorted(p.stem for p in (Path(_HERE) / "feature_sets").glob("*.py") if not p.stem.startswith("_"))
        raise FeatureError(f"unknown feature set {name!r}: the training code holds no feature_sets/{name}.py "
                           f"(it holds {', '.join(known) or 'none'}); the definition ships the file it names "
                           f"(the tabular pipeline's --feature-set FILE.py), or give none") from None


def _applies(name, columns, label):
    """(applied, why not): a feature set applies when every column it reads is kept (or is the label)."""
    if name in NO_FEATURE_SET or name is None:
        return False, "no feature set chosen"
    plugin = _load_feature_set(name)
    kept = {c["name"] for c in columns if c["kind"] != "dropped"} | {label}
    lacking = [c for c in plugin.REQUIRED if c not in kept]
    if lacking:
        return False, f"the table lacks column(s) {', '.join(lacking)}"
    return True, None
