"""Mistakes in a definition are refused when it is built or compiled, before anything runs, with a
message that names the step (or parameter) at fault and says how to fix it.

Each case builds a small pipeline from the project's own scripts with one mistake, then compiles it;
the DefinitionError may come from the adder that sees the mistake or from compile's whole-graph check.
"""
from __future__ import annotations

import dataclasses
import re

import pytest

from pipelines.compiler import compile_pipeline
from pipelines.dsl import Continuous, DefinitionError, Integer, Objective, Pipeline
from pipelines.tabular.problems import PROBLEMS

from conftest import example, example_config

pytestmark = pytest.mark.reliability

PREPROCESS, EVALUATE = "processing_scripts/preprocess.py", "processing_scripts/evaluate.py"
TYPE = "ml.m5.large"
# A message says how to fix the mistake: it tells the user to do something, or what is needed or allowed.
FIX = re.compile(r"\b(use|add|create|remove|rename|fix|give|pass|declare|choose|needs|must be|must compare|one of)\b")


def prep(p: Pipeline, name: str = "Prep", **changes):
    script = changes.pop("script", PREPROCESS)
    options = {"inputs": {"raw": "s3://bkt/raw.csv"}, "outputs": ["train", "test"], "instance_type": TYPE}
    return p.processing(name, script, **{**options, **changes})


def train(p: Pipeline, data, name: str = "Train"):
    return p.training(name, "training_scripts", channels={"train": data}, instance_type=TYPE)


def tune(p: Pipeline, data, ranges: dict):
    return p.tuning("Tune", "training_scripts", channels={"train": data}, instance_type=TYPE,
                    objective=Objective("validation:auc", "Maximize"), ranges=ranges)


def evaluate(p: Pipeline, model, test, name: str = "Eval", **changes):
    options = {"image": "xgboost", "inputs": {"model": model, "test": test}, "outputs": ["evaluation"],
               "reports": {"evaluation": ("evaluation", "evaluation.json")}, "instance_type": TYPE}
    return p.processing(name, EVALUATE, **{**options, **changes})


# --- the mistakes: each builds on `p` and must be refused ---------------------------------------


def dangling_reference(p):
    train(p, prep(p).out.trian)


def cycle(p):
    first = prep(p, "First", after=("Second",))
    prep(p, "Second", inputs={"raw": first.out.train})


def duplicate_step_name(p):
    prep(p)
    prep(p)


def parameter_of_the_wrong_type(p):
    prep(p, instance_count=p.parameter("PrepCount", 1.5))


def default_outside_its_enum(p):
    p.parameter("ApprovalStatus", "Maybe", enum=["Approved", "Rejected"])


def default_of_no_sagemaker_type(p):
    p.parameter("Threshold", True)


def missing_script(p):
    prep(p, script="processing_scripts/prepocess.py")


def invalid_instance_type(p):
    prep(p, instance_type="ml.m5.huge")


def invalid_step_name(p):
    prep(p, "Prepare data")


def step_of_another_pipeline(p):
    other = prep(Pipeline("other"))
    train(p, other.out.train)


def unknown_report(p):
    step = prep(p)
    evaluate(p, train(p, step.out.train).model, step.out.test).report("evaluaton")


def undefined_parameter(p):
    seed = Pipeline("other").parameter("Seed", 42)
    prep(p, arguments=["--seed", seed])


def tuning_range_of_the_wrong_kind(p):
    tune(p, prep(p).out.train, {"eta": (0.01, 0.3)})


def tuning_range_upside_down(p):
    tune(p, prep(p).out.train, {"max_depth": Integer(10, 3), "eta": Continuous(0.3, 0.01)})


def report_written_to_no_output(p):
    step = prep(p)
    evaluate(p, train(p, step.out.train).model, step.out.test, reports={"evaluation": ("metrics", "evaluation.json")})


def after_an_unknown_step(p):
    prep(p, after=("Sanitise",))


def condition_that_compares_nothing(p):
    p.condition("Gate", True, then=[p.fail("Stop", "stopped")])


def image_without_version(p):
    prep(p, image="pytorch")


def no_image(p):
    prep(p, image="my-image")


MISTAKES = [  # (the mistake, what the message must name: the step or parameter, and the specifics)
    (dangling_reference, ["'Prep'", "'trian'", "train, test"]),
    (cycle, ["cycle", "First -> Second -> First"]),
    (duplicate_step_name, ["'Prep'", "twice"]),
    (parameter_of_the_wrong_type, ["'Prep'", "instance_count", "'PrepCount'", "Float"]),
    (default_outside_its_enum, ["ApprovalStatus", "Approved, Rejected", "'Maybe'"]),
    (default_of_no_sagemaker_type, ["'Threshold'", "str, int or float"]),
    (missing_script, ["'Prep'", "processing_scripts/prepocess.py"]),
    (invalid_instance_type, ["'Prep'", "'ml.m5.huge'", "ml.m5.xlarge"]),
    (invalid_step_name, ["'Prepare data'", "letters, digits"]),
    (step_of_another_pipeline, ["'Train'", "'Prep'", "'reliability'"]),
    (unknown_report, ["'Eval'", "'evaluaton'", "evaluation"]),
    (undefined_parameter, ["'Prep'", "'Seed'", "p.parameter"]),
    (tuning_range_of_the_wrong_kind, ["'Tune'", "'eta'", "Continuous(low, high)"]),
    (tuning_range_upside_down, ["'Tune'", "'max_depth'"]),
    (report_written_to_no_output, ["'Eval'", "'metrics'", "outputs="]),
    (after_an_unknown_step, ["'Prep'", "'Sanitise'"]),
    (condition_that_compares_nothing, ["'Gate'", "report value or parameter"]),
    (image_without_version, ["'Prep'", "'pytorch'", "Image('pytorch', VERSION"]),
    (no_image, ["'Prep'", "'my-image'", "Image(framework, version)", "image URI"]),
]


@pytest.fixture(scope="module")
def cfg():
    return example_config()


@pytest.mark.parametrize("mistake, named", MISTAKES, ids=[m.__name__ for m, _ in MISTAKES])
def test_a_mistake_is_refused_before_anything_runs_naming_the_step_and_the_fix(cfg, mistake, named):
    p = Pipeline("reliability")
    with pytest.raises(DefinitionError) as refused:
        mistake(p)
        compile_pipeline(p, cfg)
    message = str(refused.value)
    assert all(part in message for part in named), f"{message!r} should name {named}"
    assert FIX.search(message), f"{message!r} names no fix"


def test_a_gate_on_a_metric_evaluate_never_writes_is_refused(cfg, monkeypatch):
    """evaluate.py writes binary_classification_metrics.roc_auc.value; a gate on `.auc.` could never pass."""
    monkeypatch.setitem(PROBLEMS, "binary", dataclasses.replace(PROBLEMS["binary"], gate_metric="auc"))
    with pytest.raises(DefinitionError, match=re.escape("binary_classification_metrics.auc.value")):
        compile_pipeline(example().definition(cfg), cfg)
