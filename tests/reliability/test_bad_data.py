"""Bad input files through the local pipeline: Preprocess fails with a reason a person understands
(the problem, and the file, line or column), is not retried, nothing after it runs, the execution and
the `--json` summary carry the reason, and what an earlier successful execution left in the same
home (outputs, models, cache, registry, record) is untouched.

One successful run (no tuning, 1,000 generated sessions) fills the home; the bad files are then run
through the runner API, as `run --local --input-data` runs them, four at a time; one also through the
command line.
"""
from __future__ import annotations

import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import EXAMPLE_DEF, example_config, run_cli, steps_of

from pipelines import history
from pipelines.inputs import stage_input
from examples.purchase_intent.shoppers_data import LABEL, generate, write_csv
from pipelines.local import LocalHome, run_pipeline

from .support import REGION, fingerprint, local_store, registry_rows

pytestmark = pytest.mark.reliability

# The script's own DataError ("Preprocessing failed: <what and where>"), not an exception's repr.
CLEAR = re.compile(r"AlgorithmError: Preprocessing failed: (?![A-Za-z.]+(Error|Exception): )")


# --- the bad files, each made from the CSV text of 300 good sessions -------------------------------


def frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def csv_bytes(df: pd.DataFrame, **options) -> bytes:
    return df.to_csv(index=False, **options).encode()


def with_value(text: str, column: str, values: dict[int, str]) -> bytes:
    df = frame(text)
    for row, value in values.items():
        df.loc[row, column] = value
    return csv_bytes(df)


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8))

BAD_FILES = [  # (kind, file name, the bytes from good CSV text, what the reason must say)
    ("missing label column", "no_label.csv", lambda t: csv_bytes(frame(t).drop(columns=LABEL)),
     ["no_label.csv", "no label column 'Revenue'", "--label"]),
    ("empty file", "empty.csv", lambda t: b"", ["empty.csv", "is empty (0 bytes)"]),
    ("header only", "header_only.csv", lambda t: lines(t)[0].encode(), ["header_only.csv", "no data rows"]),
    ("semicolons", "semicolons.csv", lambda t: csv_bytes(frame(t), sep=";"),
     ["semicolons.csv", "separated by ';'", "comma-separated"]),
    ("not UTF-8", "latin1.csv", lambda t: t.replace("Returning_Visitor", "Returning_Visitör").encode("latin-1"),
     ["latin1.csv", "line 2 is not UTF-8", "save the file as UTF-8"]),
    ("text in a numeric column", "text.csv", lambda t: with_value(t, "PageValues", {40: "lots"}),
     ["text.csv line 42", "'PageValues' should be numeric", "'lots'"]),
    ("a single class", "one_class.csv", lambda t: csv_bytes(frame(t).assign(Revenue="FALSE")),
     ["'Revenue'", "single class"]),
    ("NaN and inf", "nan_inf.csv", lambda t: with_value(t, "PageValues", {10: "NaN", 11: "inf"}),
     ["nan_inf.csv line 13", "'PageValues' has an infinite value"]),
    ("duplicated column names", "duplicates.csv", lambda t: t.replace("Browser", "Region", 1).encode(),
     ["duplicates.csv", "'Region' more than once", "rename"]),
    ("a very long line", "long_line.csv", lambda t: "".join([*lines(t)[:50], ",".join("1" * 100_000) + "\n",
                                                             *lines(t)[50:]]).encode(),
     ["long_line.csv line 51 has 100000 fields but the header has 18"]),
    ("truncated last row", "truncated.csv", lambda t: t.rstrip("\n")[:-25].encode(),
     ["truncated.csv line 301", "looks truncated"]),
    ("binary garbage", "garbage.csv", lambda t: GARBAGE, ["garbage.csv", "binary file, not CSV text"]),
    ("a .gz name on plain text", "plain.csv.gz", lambda t: t.encode(), ["plain.csv.gz is not gzip-compressed"]),
    ("not a CSV file name", "sessions.txt", lambda t: t.encode(), ["found: sessions.txt", "rename"]),
    ("too few rows", "five_rows.csv", lambda t: "".join(lines(t)[:6]).encode(), ["cannot split 5 rows"]),
    ("three classes for a binary label", "three.csv", lambda t: t.replace(",FALSE\n", ",MAYBE\n", 20).encode(),
     ["'Revenue' has 3 classes", "--problem-type multiclass"]),
    ("no label values", "no_values.csv", lambda t: csv_bytes(frame(t).assign(Revenue="")),
     ["no rows with a 'Revenue' value", "no_values.csv"]),
]


# --- one home with an earlier successful execution ---------------------------------------------------


class Lab:
    """A home holding one successful execution, and what it held right after it."""

    def __init__(self, root: Path, compiled):
        self.root, self.compiled = root, compiled
        self.cfg = example_config(tuning=False)
        self.home = LocalHome(root / "home")
        self.store = local_store(self.home, compiled)
        self.sessions = write_csv(generate(300, seed=7), root / "sessions.csv").read_text()
        self.earlier = self.run(write_csv(generate(1000, seed=3), root / "good.csv"), QualityThreshold="0.6")
        self.before = self.state()

    def run(self, path: Path, **parameters) -> dict:
        """`run --local --input-data PATH`, through the runner API."""
        uri = stage_input(str(path), f"{self.cfg.s3_root}/data", self.store.put_file)
        return run_pipeline(self.compiled.definition, pipeline_name=self.compiled.name, home=self.home,
                            store=self.store, parameters={"InputData": uri, **parameters})

    def state(self) -> SimpleNamespace:
        run_dir = self.home.runs / self.earlier["execution_id"]
        # The step cache; the report's plots (cache/plots) are drawn for whatever run asks, failed ones too.
        steps = {k: v for k, v in fingerprint(self.home.cache).items() if not k.startswith("plots/")}
        return SimpleNamespace(store=fingerprint(self.home.s3), cache=steps,
                               record=fingerprint(run_dir), registry=registry_rows(self.home))

    def changes(self) -> list[str]:
        """What differs from right after the earlier execution: changed or lost objects, new or changed
        cache entries, the earlier record, registry rows. (New objects, the new runs' inputs, are fine.)"""
        before, now = self.before, self.state()
        lost = [f"s3/{key}" for key, digest in before.store.items() if now.store.get(key) != digest]
        return lost + [what for what in ("cache", "record", "registry")
                       if getattr(now, what) != getattr(before, what)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, compile_with) -> Lab:
    lab = Lab(tmp_path_factory.mktemp("bad-data"), compile_with(tuning=False))
    assert lab.earlier["status"] == "Succeeded", lab.earlier["failure_reason"]
    assert lab.before.registry and lab.before.cache, "the earlier execution should register and cache"
    return lab


@pytest.fixture(scope="module")
def bad_runs(lab) -> dict[str, dict]:
    """The record of each bad file's execution, four at a time (executions share a home, as users' do)."""
    def run(case) -> dict:
        kind, name, build, _ = case
        path = lab.root / "bad" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(build(lab.sessions))
        return lab.run(path)

    with ThreadPoolExecutor(4) as pool:
        return dict(zip([case[0] for case in BAD_FILES], pool.map(run, BAD_FILES)))


@pytest.mark.parametrize("kind, expected", [(case[0], case[3]) for case in BAD_FILES],
                         ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_fails_preprocess_with_a_clear_reason_and_nothing_after_it_runs(bad_runs, kind, expected):
    record = bad_runs[kind]
    steps = steps_of(record)
    reason = steps["Preprocess"]["failure_reason"]
    assert (record["status"], record["failed_step"]) == ("Failed", "Preprocess")
    assert {n: s["status"] for n, s in steps.items() if n != "Preprocess"} == dict.fromkeys(
        set(steps) - {"Preprocess"}, "NotRun")
    assert [a["error_type"] for a in steps["Preprocess"]["attempts"]] == ["AlgorithmError"]  # bad data: no retry
    assert record["failure_reason"] == reason == history.summary(history.local_view(record, None))["failure_reason"]
    assert CLEAR.match(reason), reason
    assert all(part in reason for part in expected), f"{reason!r} should say {expected}"


def test_bad_files_leave_the_earlier_execution_and_the_registry_as_they_were(lab, bad_runs):
    assert len(bad_runs) == len(BAD_FILES)
    assert lab.changes() == []


def test_the_command_line_fails_with_the_reason_in_the_users_words_in_its_json_summary(lab, tmp_path):
    path = tmp_path / "text.csv"
    path.write_bytes(with_value(lab.sessions, "PageValues", {40: "lots"}))
    code, summary = run_cli("run", "--definition", EXAMPLE_DEF, "--local", "--no-tuning", "--region", REGION,
                            "--home", lab.home.root, "--input-data", path)
    record = lab.home.execution(summary["execution_id"])
    assert (code, summary["status"], record["status"]) == (1, "Failed", "Failed")
    assert "/opt/ml/processing/input/raw/text.csv line 42" in record["failure_reason"]  # what the job saw
    assert summary["failure_reason"] == record["failure_reason"].replace("/opt/ml/processing/input/raw/text.csv",
                                                                         str(path))  # what the user gave
    assert [s["status"] for s in summary["steps"] if s["name"] != "Preprocess"] == ["NotRun"] * 5
    assert lab.changes() == []


def test_a_file_that_is_not_comma_separated_is_refused_before_anything_is_recorded(lab, tmp_path, capsys):
    from pipelines import cli

    path = tmp_path / "semicolons.csv"
    path.write_bytes(csv_bytes(frame(lab.sessions), sep=";"))
    runs = len(lab.home.executions())
    assert cli.main(["run", "--definition", EXAMPLE_DEF, "--local", "--home", str(lab.home.root),
                     "--input-data", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path} is separated by ';', not by commas (its header is one " \
                                      f"column): save it as comma-separated CSV\n"
    assert len(lab.home.executions()) == runs and lab.changes() == []
