"""`suggest` looks at a table and recommends the approach, with reasons measured on the data; `run --local`
without --problem-type takes its recommendation and says so. Generated tables of every shape the suite
knows (fixtures/tables.py), tables without a usable label, and the real data set where it is present."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT
from fixtures.tables import SHAPES, string_label
from test_first_steps import deploy

from pipelines.local import LocalHome
from pipelines.tabular.suggest import BLOCKS, WHOLE_FILE_BYTES, suggest_table

REAL = next((p for p in (PROJECT_ROOT.parent / "shared" / "data", PROJECT_ROOT.parent.parent / "shared" / "data")
             if (p / "online_shoppers_intention.csv").is_file()), None)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.__name__)
def test_each_generated_table_gets_its_problem_type_with_reasons_and_the_run_command(tmp_path, shape):
    table = shape()
    path = tmp_path / f"{table.name}.csv"
    table.frame.to_csv(path, index=False)
    code, out, err = deploy("suggest", "--input-data", path, "--label", table.label, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["problem_type"] == table.problem_type, found["reasons"]
    assert not found["needs_labels"] and found["exact"] and found["rows_estimated"] == len(table.frame)
    assert found["command"] == (f"python deploy.py run --local --input-data {path} --label {table.label} "
                                f"--problem-type {table.problem_type}")
    gate = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[table.problem_type]
    assert found["gate"]["metric"] == gate and "baseline" in found["gate"]["why"]
    assert any(reason.startswith(f"label {table.label!r}") for reason in found["reasons"])
    dropped = {c["name"] for c in found["columns"] if c["dropped"]}
    assert dropped == {name for name, kind in table.kinds.items() if kind == "dropped"}


def test_identifier_free_text_and_missing_values_are_named_with_their_measure(tmp_path):
    from fixtures.tables import categories_with_missing, with_identifier

    path = tmp_path / "ids.csv"
    with_identifier().frame.to_csv(path, index=False)
    reasons = json.loads(deploy("suggest", "--input-data", path, "--label", "converted", "--json")[1])["reasons"]
    assert any(r.startswith("identifier column customer_id") for r in reasons)
    assert any(r.startswith("free text column notes") for r in reasons)
    assert any(r.startswith("constant column source") for r in reasons)
    table = categories_with_missing()
    table.frame.to_csv(path, index=False)
    found = json.loads(deploy("suggest", "--input-data", path, "--label", "churned", "--json")[1])
    region = table.frame["region"].isna().mean()
    assert f"most in region ({region:.1%})" in " ".join(found["reasons"])
    assert found["missing_share"] == pytest.approx(table.frame.isna().to_numpy().mean(), abs=1e-4)


def test_without_a_label_it_is_segmentation_or_labeling_first(tmp_path):
    path = tmp_path / "unlabeled.csv"
    string_label().frame.drop(columns=["tier"]).to_csv(path, index=False)
    found = json.loads(deploy("suggest", "--input-data", path, "--json")[1])
    assert found["needs_labels"] and found["verdict"] == "no label was given"
    assert any("Ground Truth labeling job" in r for r in found["reasons"])


@pytest.mark.parametrize("make, verdict", [
    (lambda rng, n: np.arange(10_000, 10_000 + n), "is an identifier"),  # identifier-only label
    (lambda rng, n: [f"order-{i:05d}" for i in rng.permutation(n)], "is an identifier"),
    (lambda rng, n: np.where(rng.random(n) < 0.05, rng.choice(["a", "b"], n), None), "too sparse to learn from"),
    (lambda rng, n: ["same"] * n, "has a single value"),
    (lambda rng, n: np.where(rng.random(n) < 0.01, "fraud", "ok"), "too few to split"),
    (lambda rng, n: [f"customer {i % 700}" for i in range(n)], "too many, too rare"),
])
def test_a_label_that_cannot_be_learned_from_says_why(tmp_path, make, verdict):
    rng = np.random.default_rng(0)
    n = 1200
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "y": make(rng, n)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    found = suggest_table(path, "y")
    assert found.needs_labels and verdict in found.verdict, found.reasons


def test_the_sample_spreads_over_a_big_file_sorted_by_its_label(tmp_path):
    """A file sorted by its label: its first rows hold one class only, the blocks across it hold both."""
    n = 400_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3), "b": rng.integers(0, 9, n),
                          "y": np.sort(rng.random(n) < 0.3)})
    path = tmp_path / "sorted.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > WHOLE_FILE_BYTES  # read in BLOCKS places, not whole
    found = suggest_table(path, "y")
    assert found.problem_type == "binary" and not found.exact
    assert found.rows_sampled <= 20_000 and abs(found.rows_estimated - n) < 0.02 * n
    assert found.label_profile["classes"]["True"] == pytest.approx(frame["y"].mean(), abs=1 / BLOCKS)


def test_a_misspelt_label_and_a_missing_file_are_one_line_refusals(tmp_path):
    path = tmp_path / "t.csv"
    string_label().frame.to_csv(path, index=False)
    code, _, err = deploy("suggest", "--input-data", path, "--label", "teir")
    assert code == 2 and err.strip() == (f"error: {path} has no column 'teir': did you mean --label tier? "
                                         f"(its columns: spend, visits, channel, tier)")
    code, _, err = deploy("suggest", "--input-data", tmp_path / "nope.csv")
    assert code == 2 and "no such file or folder" in err and len(err.strip().splitlines()) == 1


def test_a_parquet_folder_is_sampled_across_its_files(tmp_path):
    table = string_label(1200)
    for i in range(3):
        table.frame.iloc[i * 400:(i + 1) * 400].to_parquet(tmp_path / f"part-{i}.parquet", row_group_size=100)
    found = suggest_table(tmp_path, "tier")
    assert (found.problem_type, found.rows_estimated, found.exact) == ("multiclass", 1200, True)


@pytest.mark.skipif(REAL is None, reason="the real data set (shared/data/online_shoppers_intention.csv) is absent")
def test_the_real_table_is_binary_on_revenue_and_multiclass_on_visitor_type():
    path = REAL / "online_shoppers_intention.csv"
    assert suggest_table(path, "Revenue").problem_type == "binary"
    assert suggest_table(path, "VisitorType").problem_type == "multiclass"
    assert suggest_table(path, "PageValues").problem_type == "regression"


def test_compiling_without_a_problem_type_asks_for_one_and_names_suggest():
    code, _, err = deploy("compile", "--label", "tier")
    assert code == 2 and "needs the problem type: pass --problem-type binary|multiclass|regression" in err
    assert "suggest --input-data FILE --label tier" in err


def test_run_local_without_a_problem_type_takes_the_suggestion_and_says_so(tmp_path):
    path = tmp_path / "tiers.csv"
    string_label(600, seed=4).frame.to_csv(path, index=False)
    home = tmp_path / "home"
    code, out, err = deploy("run", "--local", "--home", home, "--input-data", path, "--label", "tier",
                            "--no-tuning", "--json")
    summary = json.loads(out)
    assert code == 0, summary["failure_reason"]
    said = [line for line in err.splitlines() if line.startswith("problem type")]
    assert len(said) == 1 and said[0].startswith("problem type multiclass, as suggest recommends: label 'tier' has 3")
    assert summary["registered_model"]["ModelPackageGroupName"] == "tabular-tier-multiclass"
    record = LocalHome(home).execution(summary["execution_id"])
    assert record["origin"]["flags"]["problem_type"] == "multiclass"  # --from and --resume keep it


def test_the_choosing_the_approach_page_shows_what_suggest_prints_today(tmp_path, monkeypatch):
    from fixtures.tables import categories_with_missing, skewed_target, with_identifier

    categories_with_missing(2000).frame.to_csv(tmp_path / "churn.csv", index=False)
    skewed_target(2000).frame.to_csv(tmp_path / "prices.csv", index=False)
    with_identifier(2000).frame.drop(columns=["converted"]).to_csv(tmp_path / "visits.csv", index=False)
    monkeypatch.chdir(tmp_path)
    page = (PROJECT_ROOT / "docs" / "choosing-the-approach.md").read_text()
    shown = [block.strip() for block in page.split("```")[1::2] if block.startswith("\n$ python deploy.py suggest")]
    assert len(shown) == 3
    for block in shown:
        command, _, output = block.partition("\n")
        code, out, err = deploy(*command.removeprefix("$ python deploy.py ").split())
        assert code == 0 and out.strip() == output, err
