"""Tables the project has never seen, by flags alone: each reaches its quality gate with the right metrics,
registers in a group of its own, and is served by its own schema.

Every shape of tests/fixtures/tables.py runs end to end on the local runner (`run --local --no-tuning
--input-data --label --problem-type`, nothing else), with the default gate: baseline+10%.
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from werkzeug.test import Client

from conftest import run_cli, steps_of
from fixtures.tables import SHAPES, string_label, with_identifier

from examples.purchase_intent.shoppers_data import write_csv
from pipelines.local import LocalHome, Registry, open_store
from pipelines.local import endpoint as local_endpoint
from pipelines.tabular.problems import PROBLEMS


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("any-table") / "home"


@pytest.fixture(scope="module")
def runs(home, tmp_path_factory):
    """Each shape's table, the summary of its run, and the schema its Preprocess wrote."""
    data = tmp_path_factory.mktemp("tables")
    out = {}
    for shape in SHAPES:
        table = shape()
        path = data / f"{table.name}.csv"
        write_csv(table.frame, path)
        code, summary = run_cli("run", "--local", "--home", home, "--no-tuning", "--input-data", path,
                                "--label", table.label, "--problem-type", table.problem_type)
        record = LocalHome(home).execution(summary["execution_id"])
        outputs = steps_of(record)["Preprocess"]["response"]["ProcessingOutputConfig"]["Outputs"]
        uri = next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == "schema")
        schema = json.loads(open_store(None, root=LocalHome(home).s3).get_bytes(f"{uri}/schema.json"))
        out[table.name] = (table, code, summary, schema)
    return out


@pytest.mark.parametrize("name", [shape.__name__ for shape in SHAPES])
def test_a_new_table_reaches_and_passes_its_gate_by_flags_alone(runs, name):
    table, code, summary, schema = runs[name]
    assert code == 0, summary["failure_reason"]
    problem = PROBLEMS[table.problem_type]
    assert summary["gate"]["metric"] == problem.gate_path and summary["gate"]["passed"]
    assert summary["gate"]["rule"] == "baseline+10%" and summary["gate"]["value"] >= summary["gate"]["threshold"]
    section = summary["metrics"][problem.metrics_key]
    assert all("baseline" in section[m] for m in problem.metrics if m not in ("threshold", "calibration_error_floor"))
    registered = summary["registered_model"]
    assert registered["ModelPackageArn"].endswith(
        f"/tabular-{table.label.lower()}-{table.problem_type}/1")  # a group of its own
    assert {c["name"]: c["kind"] for c in schema["columns"] if c["name"] in table.kinds} == table.kinds
    assert schema["label"]["classes"] == table.classes
    assert Path(summary["report"]).is_file() and summary["model_card"]  # both rendered for every shape


def test_the_report_shows_the_schema_and_what_was_dropped(runs):
    _, _, summary, _ = runs["with_identifier"]
    html = open(summary["report"]).read()
    for text in ("customer_id", "identifier: a different whole number in every row", "constant: every row is",
                 "free text", "Baseline"):
        assert text in html, text


def test_each_model_lands_in_its_own_group_and_models_says_what_it_predicts(runs, home, capsys):
    from pipelines import cli

    groups = {g["ModelPackageGroupName"] for g in Registry.of(LocalHome(home)).list_groups()}
    assert len(groups) == len(SHAPES)
    assert cli.main(["models", "--local", "--all", "--home", str(home)]) == 0
    assert "tabular-tier-multiclass  (multiclass model of 'tier')" in capsys.readouterr().out
    # Without --all: the group of the pipeline the flags describe.
    assert cli.main(["models", "--local", "--home", str(home), "--label", "tier", "--problem-type", "multiclass"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "tabular-tier-multiclass  (multiclass model of 'tier')"


def served(home, name, label, problem_type, tmp_path):
    """A test client of the local endpoint serving the newest version of a shape's group."""
    group = f"tabular-{label.lower()}-{problem_type}"
    package = Registry.of(LocalHome(home)).latest(group)
    store = open_store(None, root=LocalHome(home).s3)
    return Client(local_endpoint.load_app(store, package, tmp_path / name))


def test_multiclass_predictions_name_their_classes(runs, home, tmp_path):
    table = string_label(8, seed=9)
    client = served(home, "tier", "tier", "multiclass", tmp_path)
    body = table.frame.drop(columns="tier").to_csv(index=False)
    response = client.post("/invocations", data=body, headers={"Content-Type": "text/csv",
                                                              "Accept": "application/json"})
    assert response.status_code == 200, response.text
    predictions = response.get_json()["predictions"]
    assert len(predictions) == 8 and {p["predicted_class"] for p in predictions} <= {"bronze", "gold", "silver"}
    assert all(set(p["probabilities"]) == {"bronze", "gold", "silver"} for p in predictions)
    csv_lines = client.post("/invocations", data=body, headers={"Content-Type": "text/csv",
                                                                "Accept": "text/csv"}).text.splitlines()
    assert [line.split(",")[0] for line in csv_lines] == [p["predicted_class"] for p in predictions]
    headed = client.post("/invocations", data=body, headers={"Content-Type": "text/csv",
                                                             "Accept": "text/csv;header=present"}).text.splitlines()
    assert headed == ["predicted_class,p_bronze,p_gold,p_silver", *csv_lines]  # asked for: the class order named


def test_nothing_of_the_worked_example_shows_in_the_runs_of_other_tables(runs, home):
    """Every file of the home these tables' runs made (records, logs, reports, model cards, the store's
    outputs and the code and models in it, archives unpacked) names neither the example nor its columns."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        for name, data in _contents(path):
            text = data.decode("utf-8", errors="replace")
            found += [f"{name}: {word}" for word in ("purchase", "shopper", "Revenue")
                      if (word in text if word == "Revenue" else word in text.lower())]
    assert found == []


def _contents(path: Path):
    """(name, bytes) of a file, or of each member of a tar archive."""
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tar:
            yield from ((f"{path}!{m.name}", tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile())
    else:
        yield str(path), path.read_bytes()


def test_the_endpoint_reads_rows_by_the_schema_and_names_what_is_wrong(runs, home, tmp_path):
    table = with_identifier(6, seed=8)
    client = served(home, "converted", "converted", "binary", tmp_path)
    rows = table.frame.drop(columns="converted")

    def post(frame, header=True):
        return client.post("/invocations", data=frame.to_csv(index=False, header=header),
                           headers={"Content-Type": "text/csv", "Accept": "text/csv"})

    ok = post(rows)
    assert ok.status_code == 200 and len(ok.text.splitlines()) == 6
    assert post(rows, header=False).text == ok.text  # schema order, the dropped columns included
    assert post(rows[["score", "segment"]], header=False).text == ok.text  # or only the columns the model reads
    assert post(rows.assign(extra=1)).text == ok.text  # extra columns are ignored
    missing = post(rows.drop(columns="score"))
    assert missing.status_code == 400 and "score" in missing.get_json()["message"]
    wrong = post(rows.assign(score="lots"))
    assert wrong.status_code == 400 and "column 'score' must be numeric; got 'lots'" in wrong.get_json()["message"]
    unseen = post(rows.assign(segment="zzz"))
    assert unseen.status_code == 200  # an unseen category is scored as missing (and counted in the log)
    assert pd.read_csv(io.StringIO(unseen.text), header=None).shape == (6, 1)


def test_declared_schema_positive_class_and_feature_set_reach_the_compiled_steps(tmp_path, capsys):
    from pipelines import cli

    declared = tmp_path / "schema.json"
    declared.write_text(json.dumps({"StoreId": "code"}))
    assert cli.main(["compile", "--schema", str(declared), "--positive-class", "yes", "--feature-set", "none",
                     "--label", "Churned"]) == 0
    definition = json.loads(capsys.readouterr().out)
    schema = next(p for p in definition["Parameters"] if p["Name"] == "Schema")
    assert json.loads(schema["DefaultValue"]) == {"StoreId": "code"}
    steps = {s["Name"]: s for s in definition["Steps"]}
    arguments = steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--schema") + 1] == {"Get": "Parameters.Schema"}
    assert arguments[arguments.index("--positive-class") + 1] == "yes"
    assert steps["Tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]["feature_set"] == '"none"'
    assert cli.main(["compile", "--schema", str(tmp_path / "nowhere.json")]) == 2
    assert "--schema" in capsys.readouterr().err


def test_approve_acts_in_the_group_of_the_current_flags(runs, home, capsys):
    from pipelines import cli

    assert cli.main(["approve", "latest", "--local", "--home", str(home), "--label", "tier",
                     "--problem-type", "multiclass"]) == 0
    assert capsys.readouterr().out.strip().endswith("model-package/tabular-tier-multiclass/1: Approved")
    registry = Registry.of(LocalHome(home))
    statuses = {g["ModelPackageGroupName"]: registry.latest(g["ModelPackageGroupName"])["ModelApprovalStatus"]
                for g in registry.list_groups()}
    assert [g for g, s in statuses.items() if s == "Approved"] == ["tabular-tier-multiclass"]
