"""Labels from a labeling job: the tabular pipeline takes a Ground Truth output manifest as its input.

The manifests are generated in the shape AWS documents for classification jobs' output
(https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-output.html; fixtures/ground_truth.py).
"""
from __future__ import annotations

import json

import pytest
from fixtures import ground_truth
from test_first_steps import deploy
from test_preprocess import read_splits

from pipelines.local import LocalHome
from processing_scripts import preprocess


def prep(tmp_path, lines, *extra, attribute="sport"):
    ground_truth.write(lines, tmp_path / "raw" / "output.manifest")
    out = tmp_path / "prep"
    preprocess.main(["--input-dir", str(tmp_path / "raw"), "--output-dir", str(out), "--label", attribute,
                     "--problem-type", "multiclass", "--label-attribute", attribute,
                     "--failure-file", str(tmp_path / "failure" / "message"), *extra])
    return out


def test_a_single_label_manifest_is_a_table_whose_classes_are_the_metadata_class_names(tmp_path):
    lines, data = ground_truth.single_label(600, unlabeled=40)
    out = prep(tmp_path, lines)
    schema = json.loads((out / "schema" / "schema.json").read_text())
    assert schema["label"]["classes"] == sorted(ground_truth.CLASSES)  # names, not the job's indexes
    assert {c["name"]: c["kind"] for c in schema["columns"]} == {"players": "number", "ball_cm": "number",
                                                                "venue": "category"}
    profile = json.loads((out / "profile" / "profile.json").read_text())
    assert profile["manifest"] == {"label_attribute": "sport", "objects": 600, "labeled": 560, "unlabeled": 40,
                                   "below_min_confidence": 0, "min_confidence": 0.0, "not_human_annotated": 0,
                                   "human_annotated_only": False}
    assert profile["label_missing_dropped"] == 40
    splits = read_splits(out)
    assert sum(len(s) for s in splits.values()) == 560
    train = splits["train"]
    named = [schema["label"]["classes"][code] for code in train["sport"]]
    by_players = {name: train["players"][[n == name for n in named]].mean() for name in ground_truth.CLASSES}
    assert by_players["football"] > by_players["basketball"] > by_players["tennis"]  # each row kept its own label


def test_low_confidence_and_automated_labels_are_filtered_and_counted(tmp_path):
    lines, _ = ground_truth.single_label(600)
    metas = [line["sport-metadata"] for line in lines]
    below = sum(m["confidence"] < 0.75 for m in metas)
    automated = sum(m["human-annotated"] == "no" and m["confidence"] >= 0.75 for m in metas)
    out = prep(tmp_path, lines, "--min-confidence", "0.75", "--human-annotated-only", "true")
    profile = json.loads((out / "profile" / "profile.json").read_text())["manifest"]
    assert (profile["below_min_confidence"], profile["not_human_annotated"]) == (below, automated)
    assert profile["labeled"] == 600 - below - automated and below > 0


def test_a_multi_label_manifest_learns_each_set_of_names_as_one_class(tmp_path):
    out = prep(tmp_path, ground_truth.multi_label(600), attribute="tags")
    classes = json.loads((out / "schema" / "schema.json").read_text())["label"]["classes"]
    expected = {"+".join(sorted([sport, *extra])) for sport in ground_truth.CLASSES for extra in ([], ["indoor"])}
    assert set(classes) == expected and "indoor+tennis" in classes  # the names, sorted, joined by +


def test_a_manifest_line_that_is_not_json_fails_naming_the_line(tmp_path):
    lines, _ = ground_truth.single_label(60)
    path = ground_truth.write(lines, tmp_path / "raw" / "output.manifest")
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(SystemExit):
        preprocess.main(["--input-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "prep"), "--label",
                         "sport", "--problem-type", "multiclass", "--label-attribute", "sport",
                         "--failure-file", str(tmp_path / "message")])
    message = (tmp_path / "message").read_text()
    assert "output.manifest line 61 is not JSON" in message


@pytest.mark.parametrize("flags, expected", [
    (["--label", "sport"], "is a Ground Truth output manifest: pass --label-attribute NAME (its label attributes: sport)"),
    (["--label-attribute", "sprot"], "no object has the label attribute 'sprot' with its -metadata (its label "
                                     "attributes: sport)"),
    (["--label-attribute", "sport", "--min-confidence", "1.1"], "every label of 'sport' is filtered out"),
])
def test_a_manifest_given_wrongly_is_refused_in_one_line_before_anything_runs(tmp_path, flags, expected):
    lines, _ = ground_truth.single_label(100)
    path = ground_truth.write(lines, tmp_path / "output.manifest")
    code, _, err = deploy("run", "--local", "--home", tmp_path / "home", "--input-data", path, *flags,
                          "--problem-type", "multiclass")
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "home" / "executions").exists() or not list((tmp_path / "home" / "executions").iterdir())


def test_a_ground_truth_manifest_trains_a_classifier_end_to_end_with_the_metadata_class_names(tmp_path):
    """source-ref rows: the data objects are in S3 (staged into the local store), as a labeling job left them."""
    prefix = "s3://labeling-input/sports"
    lines, data = ground_truth.single_label(600, unlabeled=30, source_ref=prefix)
    path = ground_truth.write(lines, tmp_path / "output.manifest")
    objects = ground_truth.write_objects(data, tmp_path / "objects")
    home = tmp_path / "home"
    code, out, err = deploy("run", "--local", "--home", home, "--input-data", path, "--label-attribute", "sport",
                            "--stage", f"{prefix}={objects}", "--no-tuning", "--json")
    summary = json.loads(out)
    assert code == 0, summary["failure_reason"]
    assert "problem type multiclass: the manifest's 'sport' labels have 3 classes (basketball, football, tennis)" in err
    assert summary["registered_model"]["ModelPackageGroupName"] == "tabular-sport-multiclass"
    log = "\n".join(deploy("logs", "--local", "--home", home, summary["execution_id"], "Preprocess")[1].splitlines())
    assert "manifest: 600 objects, 570 labeled, 30 without a label" in log
    record = LocalHome(home).execution(summary["execution_id"])
    assert record["origin"]["settings"]["label_attribute"] == "sport"
