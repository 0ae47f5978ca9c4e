"""Definition mistakes are refused when the definition is built or compiled, naming the step and the fix."""
from __future__ import annotations

import pytest

from pipelines import dsl
from pipelines.compiler import compile_pipeline
from pipelines.config import Config
from pipelines.dsl import Categorical, Continuous, DefinitionError, Integer, Objective, Pipeline


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A project root of our own, so these tests do not depend on the real container scripts."""
    (tmp_path / "prep.py").write_text("print('prep')\n")
    (tmp_path / "eval.py").write_text("print('eval')\n")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.py").write_text("print('train')\n")
    monkeypatch.setattr(dsl, "PROJECT_ROOT", tmp_path)
    return tmp_path


def prep_step(p: Pipeline, name="Prep", **options) -> dsl.Processing:
    return p.processing(name, "prep.py", outputs=["train", "test"], instance_type="ml.m5.xlarge", **options)


def tune_step(p: Pipeline, prep, name="Tune", **options) -> dsl.Tuning:
    options = {"ranges": {"eta": Continuous(0.01, 0.3)}, **options}
    return p.tuning(name, "train", channels={"train": prep.out.train}, instance_type="ml.m5.xlarge",
                    objective=Objective("validation:auc", "Maximize"), **options)


def full(p: Pipeline):
    """A small but complete pipeline: prep -> tune -> eval -> gate -> register | fail."""
    threshold = p.parameter("Threshold", 0.7)
    prep = prep_step(p)
    tune = tune_step(p, prep)
    ev = p.processing("Eval", "eval.py", inputs={"model": tune.best_model, "test": prep.out.test},
                      outputs=["report"], reports={"evaluation": ("report", "evaluation.json")},
                      instance_type="ml.m5.large")
    auc = ev.report("evaluation")["metrics.auc.value"]
    reg = p.register("Reg", tune.best_model, group="g", report=ev.report("evaluation"))
    fail = p.fail("TooWeak", "auc", auc, "below", threshold)
    p.condition("Gate", auc >= threshold, then=[reg], otherwise=[fail])
    return p


def test_a_correct_definition_validates_and_keeps_branch_steps_under_their_condition(root):
    p = full(Pipeline("ok")).validate()
    assert [s.name for s in p.top_level()] == ["Prep", "Tune", "Eval", "Gate"]
    assert [s.name for s in p.steps["Gate"].upstream()] == ["Eval"]
    assert {s.name for s in p.steps["Eval"].upstream()} == {"Tune", "Prep"}


def test_duplicate_step_names_are_refused(root):
    p = Pipeline("dup")
    prep_step(p)
    with pytest.raises(DefinitionError, match=r"step name 'Prep' is used twice: step names must be unique"):
        prep_step(p)


def test_a_reference_to_a_missing_output_names_the_step_and_its_outputs(root):
    prep = prep_step(Pipeline("out"))
    with pytest.raises(DefinitionError) as e:
        prep.out.nope
    assert "step 'Prep' has no output 'nope'" in str(e.value)
    assert "its outputs are train, test; add it to outputs=[...]" in str(e.value)


def test_a_cycle_through_after_is_refused_at_validate_and_at_compile(root):
    p = Pipeline("cycle")
    prep = prep_step(p, after=["Tune"])
    tune_step(p, prep)
    with pytest.raises(DefinitionError, match=r"cycle: (Prep -> Tune -> Prep|Tune -> Prep -> Tune); remove one"):
        p.validate()
    with pytest.raises(DefinitionError, match="cycle"):
        compile_pipeline(p, Config(region="us-east-1", bucket="b"))


def test_a_step_cannot_run_after_itself(root):
    p = Pipeline("self")
    prep_step(p, after=["Prep"])
    with pytest.raises(DefinitionError, match=r"cycle: Prep -> Prep"):
        p.validate()


def test_after_an_unknown_step_names_the_known_ones(root):
    p = Pipeline("after")
    prep_step(p, after=["Nope"])
    with pytest.raises(DefinitionError, match=r"step 'Prep' runs after 'Nope', which is not a step .*steps: Prep"):
        p.validate()


@pytest.mark.parametrize("default", [True, None, [1], {"a": 1}])
def test_a_parameter_default_must_be_a_sagemaker_type(default):
    with pytest.raises(DefinitionError, match=r"parameter 'P': default .* must be a str, int or float"):
        Pipeline("param").parameter("P", default)


def test_a_parameter_default_outside_its_enum_is_refused():
    with pytest.raises(DefinitionError, match=r"parameter Status must be one of A, B, got 'C'"):
        Pipeline("enum").parameter("Status", "C", enum=("A", "B"))


def test_a_parameter_defined_twice_is_refused():
    p = Pipeline("twice")
    p.parameter("P", 1)
    with pytest.raises(DefinitionError, match=r"parameter 'P' is defined twice"):
        p.parameter("P", 2)


def test_instance_count_needs_an_integer_parameter(root):
    p = Pipeline("count")
    count = p.parameter("Count", "2")
    with pytest.raises(DefinitionError,
                       match=r"step 'Prep': instance_count needs an Integer parameter, but parameter 'Count' is String"):
        prep_step(p, instance_count=count)


@pytest.mark.parametrize("value", [0, 1.5, True, "2"])
def test_instance_count_must_be_a_whole_number(root, value):
    with pytest.raises(DefinitionError, match=r"step 'Prep': instance_count must be a whole number >= 1"):
        prep_step(Pipeline("count"), instance_count=value)


def test_tuning_limits_need_integer_parameters(root):
    p = Pipeline("limits")
    jobs = p.parameter("Jobs", 4.0)
    with pytest.raises(DefinitionError, match=r"step 'Tune': max_jobs needs an Integer parameter, but parameter 'Jobs' is Float"):
        tune_step(p, prep_step(p), max_jobs=jobs)


@pytest.mark.parametrize("ranges, message", [
    ({}, "needs at least one range"),
    ({"eta": (0.01, 0.3)}, r"range 'eta' .* use Continuous\(low, high\), Integer\(low, high\) or Categorical"),
])
def test_tuning_ranges_are_checked(root, ranges, message):
    p = Pipeline("ranges")
    with pytest.raises(DefinitionError, match=rf"step 'Tune': .*{message}"):
        tune_step(p, prep_step(p), ranges=ranges)


def test_a_tuning_jobs_runtime_is_at_least_what_sagemaker_accepts(root):
    """ResourceLimits.MaxRuntimeInSeconds of a tuning job is at least 120 in SageMaker's API; a parameter's
    default is held to it too, and early stopping is on or off."""
    p = Pipeline("budget")
    prep = prep_step(p)
    with pytest.raises(DefinitionError, match=r"step 'Tune': max_runtime must be a whole number >= 120 \(the least "):
        tune_step(p, prep, max_runtime=p.parameter("Budget", 60))
    with pytest.raises(DefinitionError, match=r"step 'Tune': early_stopping must be True or False"):
        tune_step(p, prep, early_stopping="Auto")
    assert tune_step(p, prep, max_runtime=120, early_stopping=True).max_runtime == 120


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_a_tuning_random_seed_must_be_a_whole_number(root, seed):
    p = Pipeline("seeded")
    with pytest.raises(DefinitionError, match=r"step 'Tune': random_seed must be a whole number >= 0"):
        tune_step(p, prep_step(p), random_seed=seed)


def test_tuning_accepts_every_range_kind(root):
    p = Pipeline("kinds")
    tune = tune_step(p, prep_step(p), ranges={"eta": Continuous(0.1, 0.3, log=True), "depth": Integer(3, 9),
                                              "booster": Categorical(("gbtree", "dart"))})
    assert set(tune.ranges) == {"eta", "depth", "booster"}


def test_a_missing_script_names_the_step_and_the_path(root):
    with pytest.raises(DefinitionError, match=r"step 'Prep': script nope\.py does not exist under .*create it or fix the path"):
        Pipeline("script").processing("Prep", "nope.py", instance_type="ml.m5.xlarge")


def test_a_missing_training_folder_or_entry_point_is_refused(root):
    p = Pipeline("train")
    prep = prep_step(p)
    with pytest.raises(DefinitionError, match=r"step 'Tune': folder nowhere does not exist"):
        p.training("Tune", "nowhere", channels={"train": prep.out.train}, instance_type="ml.m5.xlarge")
    with pytest.raises(DefinitionError, match=r"step 'Tune': script train/fit\.py does not exist"):
        p.training("Tune", "train", entry_point="fit.py", channels={"train": prep.out.train},
                   instance_type="ml.m5.xlarge")


@pytest.mark.parametrize("name", ["has space", "dots.not.allowed", "", "x" * 65, "ünï"])
def test_step_names_sagemaker_rejects_are_refused(root, name):
    with pytest.raises(DefinitionError, match=r"step name .* is not accepted by SageMaker: use 1 to 64 letters"):
        prep_step(Pipeline("names"), name=name)


def test_the_longest_accepted_step_name(root):
    assert prep_step(Pipeline("names"), name="A-_9" * 16).name == "A-_9" * 16


def test_a_register_step_name_leaves_room_for_the_sdk_suffix(root):
    """SageMaker sees `<name>-RegisterModel`, which must itself be a valid step name."""
    p = full(Pipeline("long"))
    with pytest.raises(DefinitionError, match=r"step name 'R{51}'.*-RegisterModel.*use 1 to 50 letters"):
        p.register("R" * 51, p.steps["Tune"].best_model, group="g", report=p.steps["Eval"].report("evaluation"))
    assert p.register("R" * 50, p.steps["Tune"].best_model, group="g", report=p.steps["Eval"].report("evaluation"))


@pytest.mark.parametrize("instance_type", ["m5.xlarge", "ml.m5.huge", "ml.M5.xlarge", "", None])
def test_an_invalid_instance_type_is_refused(root, instance_type):
    with pytest.raises(DefinitionError, match=r"step 'Prep': instance type .* is not a SageMaker instance type; use a name like ml.m5.xlarge"):
        Pipeline("types").processing("Prep", "prep.py", instance_type=instance_type)


def test_an_instance_type_parameter_is_checked_by_its_default(root):
    p = Pipeline("types")
    with pytest.raises(DefinitionError, match=r"step 'Prep': instance type 'big'"):
        p.processing("Prep", "prep.py", instance_type=p.parameter("Type", "big"))


def test_a_reference_to_a_step_of_another_pipeline_is_refused(root):
    other_prep = prep_step(Pipeline("other"))
    p = Pipeline("mine")
    tune_step(p, other_prep)
    with pytest.raises(DefinitionError, match=r"step 'Tune' reads from step 'Prep', which is not part of pipeline 'mine'"):
        p.validate()


def test_a_step_with_the_same_name_in_another_pipeline_is_still_another_step(root):
    other_prep = prep_step(Pipeline("other"))
    p = Pipeline("mine")
    prep_step(p)  # same name "Prep", different step
    tune_step(p, other_prep)
    with pytest.raises(DefinitionError, match="not part of pipeline 'mine'"):
        p.validate()


def test_an_unknown_report_names_the_declared_ones(root):
    p = full(Pipeline("report"))
    with pytest.raises(DefinitionError, match=r"step 'Eval' declares no report 'metrics'.*\(declared: evaluation\)"):
        p.steps["Eval"].report("metrics")


def test_a_condition_on_a_path_the_report_never_writes_is_refused(root):
    p = Pipeline("paths")
    prep = prep_step(p)
    ev = p.processing("Eval", "eval.py", inputs={"test": prep.out.test}, outputs=["report"],
                      reports={"evaluation": dsl.Report("report", "evaluation.json", frozenset({"m.auc.value"}))},
                      instance_type="ml.m5.large")
    assert ev.report("evaluation")["m.auc.value"].path == "m.auc.value"
    with pytest.raises(DefinitionError, match=r"step 'Eval' never writes 'm\.roc\.value'.*use one of m\.auc\.value"):
        ev.report("evaluation")["m.roc.value"]


def test_a_report_must_be_written_to_a_declared_output(root):
    with pytest.raises(DefinitionError, match=r"step 'Eval': report 'evaluation' is written to output 'nope'"):
        Pipeline("report").processing("Eval", "eval.py", outputs=["report"], instance_type="ml.m5.large",
                                      reports={"evaluation": ("nope", "evaluation.json")})


def test_register_needs_a_report_reference(root):
    p = full(Pipeline("register"))
    with pytest.raises(DefinitionError, match=r"step 'Reg2': report must be a processing step's \.report\('name'\)"):
        p.register("Reg2", p.steps["Tune"].best_model, group="g", report=None)


def test_a_parameter_of_another_pipeline_is_refused_with_the_fix(root):
    stranger = Pipeline("other").parameter("Threshold", 0.5)
    p = Pipeline("mine")
    prep = prep_step(p)
    p.fail("Fail", "too low", stranger)
    p.condition("Gate", stranger >= 0.1, then=[], otherwise=[p.steps["Fail"]])
    with pytest.raises(DefinitionError, match=r"step '(Fail|Gate)' uses parameter 'Threshold', which pipeline 'mine' "
                                              r"does not define: create it with p.parameter\('Threshold', default\)"):
        p.validate()
    assert prep.name == "Prep"


def test_a_condition_must_be_a_comparison(root):
    p = full(Pipeline("cond"))
    with pytest.raises(DefinitionError, match=r"step 'Gate2': the condition must compare"):
        p.condition("Gate2", p.parameters["Threshold"] == 0.5)


def test_a_branch_step_belongs_to_one_condition(root):
    p = full(Pipeline("branch"))
    with pytest.raises(DefinitionError, match=r"step 'Reg' is already a branch of 'Gate'"):
        p.condition("Gate2", p.parameters["Threshold"] >= 0.5, then=[p.steps["Reg"]])


def test_a_branch_step_must_be_added_to_the_pipeline(root):
    p = full(Pipeline("branch"))
    stray = dsl.Fail("Stray", message=("x",))
    with pytest.raises(DefinitionError, match=r"step 'Gate2': branch step 'Stray' was not added to this pipeline"):
        p.condition("Gate2", p.parameters["Threshold"] >= 0.5, otherwise=[stray])


@pytest.mark.parametrize("default, given, expected", [
    (1, "3", 3), (1, 7, 7), (0.5, "0.75", 0.75), (0.5, 2, 2.0), ("a", "b", "b"),
])
def test_parameter_coerce_accepts_values_of_its_type(default, given, expected):
    value = dsl.Parameter("P", default).coerce(given)
    assert value == expected and type(value) is type(default)


@pytest.mark.parametrize("default, given, message", [
    (1, "abc", "parameter P is Integer: 'abc' is not a valid integer"),
    (1, "1.5", "is not a valid integer"),
    (1, 1.0, "is not a valid integer"),
    (1, True, "is not a valid integer"),
    (0.5, "high", "parameter P is Float: 'high' is not a valid float"),
    ("a", 3, "parameter P is String: 3 is not a valid string"),
])
def test_parameter_coerce_refuses_values_of_another_type(default, given, message):
    with pytest.raises(DefinitionError, match=message):
        dsl.Parameter("P", default).coerce(given)


def test_parameter_coerce_checks_the_enum():
    with pytest.raises(DefinitionError, match=r"parameter S must be one of A, B, got 'Maybe'"):
        dsl.Parameter("S", "A", enum=("A", "B")).coerce("Maybe")
