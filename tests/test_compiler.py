"""The compiled definition JSON: step graph, property wiring, parameters, code by content hash, offline."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile

import pytest
from conftest import EXAMPLE_DEF, FAKE_ROLE, PROJECT_ROOT, REGION, example, example_config, json_steps

from pipelines.bundles import pack
from pipelines.compiler import PLACEHOLDER_ROLE, compile_pipeline
from pipelines.config import ConfigError
from pipelines.tabular.problems import PROBLEMS

BEST_MODEL = {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}
EVALUATION_REPORT = {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}


def doc(compiled) -> dict:
    return json.loads(compiled.definition)


def all_steps(compiled) -> dict[str, dict]:
    """Every step by name, condition branches included."""
    return json_steps(compiled.definition)


def inputs_of(step: dict) -> dict[str, object]:
    return {i["InputName"]: i["S3Input"]["S3Uri"] for i in step["Arguments"]["ProcessingInputs"]}


def prep_output(name: str) -> dict:
    return {"Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


def walk(value):
    """Every dict and string inside a JSON value."""
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


# --- step graph and wiring -------------------------------------------------------------------


def test_the_step_graph(compile_with):
    d = doc(compile_with())
    assert [(s["Name"], s["Type"]) for s in d["Steps"]] == [
        ("Preprocess", "Processing"), ("Tune", "Tuning"), ("Evaluate", "Processing"), ("QualityGate", "Condition")]
    gate = d["Steps"][3]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [("Register-RegisterModel", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [("Fail", "Fail")]


def test_every_reference_names_an_existing_step_parameter_or_property_file(compile_with):
    d = doc(compile_with())
    steps = all_steps(compile_with())
    params = {p["Name"] for p in d["Parameters"]}
    files = {(name, f["PropertyFileName"]) for name, s in steps.items() for f in s.get("PropertyFiles", [])}
    gets = [v["Get"] for v in walk(d["Steps"]) if isinstance(v, dict) and "Get" in v]
    assert gets
    for get in gets:
        kind, name, *rest = get.split(".")
        name = name.split("[")[0]
        if kind == "Steps":
            assert name in steps, get
            if rest[0] == "PropertyFiles":
                assert (name, rest[1]) in files, get
        elif kind == "Parameters":
            assert name in params, get
        else:
            assert kind == "Execution", get


def test_tune_trains_on_the_preprocessed_train_and_validation_splits(compile_with):
    tune = all_steps(compile_with())["Tune"]["Arguments"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in tune["TrainingJobDefinition"]["InputDataConfig"]}
    assert channels == {"train": prep_output("train"), "validation": prep_output("validation"),
                        "schema": prep_output("schema")}
    limits = tune["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert limits == {"MaxNumberOfTrainingJobs": {"Get": "Parameters.MaxTuningJobs"},
                      "MaxParallelTrainingJobs": {"Get": "Parameters.MaxParallelTuningJobs"},
                      "MaxRuntimeInSeconds": {"Get": "Parameters.TimeBudget"}}


def test_the_time_budget_bounds_the_tuning_job_and_every_training_job(compile_with):
    """TimeBudget is ResourceLimits.MaxRuntimeInSeconds of the tuning job and the StoppingCondition of each of its
    trials (and of a Train step); trials also get it, and their share's inputs, as hyperparameters."""
    tune = all_steps(compile_with())["Tune"]["Arguments"]
    budget = {"Get": "Parameters.TimeBudget"}
    assert tune["TrainingJobDefinition"]["StoppingCondition"] == {"MaxRuntimeInSeconds": budget}
    assert tune["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] == "Auto"
    static = tune["TrainingJobDefinition"]["StaticHyperParameters"]
    assert {k: static[k]["Std:Join"]["Values"] for k in ("time_budget", "tuning_jobs", "tuning_parallel")} == {
        "time_budget": [budget], "tuning_jobs": [{"Get": "Parameters.MaxTuningJobs"}],
        "tuning_parallel": [{"Get": "Parameters.MaxParallelTuningJobs"}]}
    train = all_steps(compile_with(tuning=False))["Train"]["Arguments"]
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": budget}
    parameters = {p["Name"]: p for p in doc(compile_with(time_budget="5m"))["Parameters"]}
    assert parameters["TimeBudget"] == {"Name": "TimeBudget", "Type": "Integer", "DefaultValue": 300}


def test_instances_share_the_work_by_s3_key_instead_of_repeating_it(compile_with):
    steps = all_steps(compile_with())
    prep = steps["Preprocess"]["Arguments"]
    raw, = (i["S3Input"] for i in prep["ProcessingInputs"] if i["InputName"] == "raw")
    assert raw["S3DataDistributionType"] == "ShardedByS3Key"
    assert prep["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {"Get": "Parameters.ProcessingInstanceCount"}
    job = steps["Tune"]["Arguments"]["TrainingJobDefinition"]
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in
            job["InputDataConfig"]} == {"train": "ShardedByS3Key", "validation": "ShardedByS3Key",
                                        "schema": "FullyReplicated"}  # every instance needs the whole schema
    resources = job.get("HyperParameterTuningResourceConfig") or job["ResourceConfig"]  # v2's name, v3's
    assert resources["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}


def test_evaluate_reads_the_best_tuning_job_model_and_the_test_split(compile_with):
    steps = all_steps(compile_with())
    inputs = inputs_of(steps["Evaluate"])
    assert inputs["test"] == prep_output("test")
    join = inputs["model"]["Std:Join"]
    assert join["On"] == "/" and BEST_MODEL in join["Values"] and join["Values"][-1] == "output/model.tar.gz"
    # the prefix of that path is where the tuner's training jobs write their models
    prefix = "/".join(join["Values"][:join["Values"].index(BEST_MODEL)])
    assert prefix == steps["Tune"]["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]


def test_the_quality_gate_compares_the_evaluation_report_with_the_threshold(compile_with):
    steps = all_steps(compile_with())
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    outputs = [o["OutputName"] for o in steps["Evaluate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["evaluation"]
    assert steps["QualityGate"]["Arguments"]["Conditions"] == [{
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": {"Std:JsonGet": {"PropertyFile": EVALUATION_REPORT,
                                      "Path": "binary_classification_metrics.roc_auc.value"}},
        "RightValue": {"Std:JsonGet": {"PropertyFile": EVALUATION_REPORT, "Path": "gate.threshold"}},
    }]
    # evaluate.py resolves the QualityThreshold parameter (a number or baseline+N%) into gate.threshold
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--quality-threshold") + 1] == {"Get": "Parameters.QualityThreshold"}
    assert arguments[arguments.index("--gate-metric") + 1] == "roc_auc"


def test_register_uses_the_best_model_the_evaluation_report_and_the_approval_parameter(compile_with):
    steps = all_steps(compile_with())
    register = steps["Register-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "purchase-intent-revenue-binary"  # one group per model
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"}, "evaluation.json"]}}
    container, = register["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == inputs_of(steps["Evaluate"])["model"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


def test_the_fail_message_shows_the_metric_its_value_and_the_threshold(compile_with):
    message = all_steps(compile_with())["Fail"]["Arguments"]["ErrorMessage"]
    values = list(walk(message))
    text = " ".join(v for v in values if isinstance(v, str))
    assert "roc_auc" in text and "QualityThreshold" in text
    assert {"Std:JsonGet": {"PropertyFile": EVALUATION_REPORT,
                            "Path": "binary_classification_metrics.roc_auc.value"}} in values
    assert {"Std:JsonGet": {"PropertyFile": EVALUATION_REPORT, "Path": "gate.threshold"}} in values
    assert {"Get": "Parameters.QualityThreshold"} in values


def test_without_tuning_a_training_step_feeds_evaluate_and_register(compile_with):
    d = doc(compile_with(tuning=False))
    steps = all_steps(compile_with(tuning=False))
    assert [(s["Name"], s["Type"]) for s in d["Steps"]][:2] == [("Preprocess", "Processing"), ("Train", "Training")]
    assert "Tune" not in steps
    model = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs_of(steps["Evaluate"])["model"] == model
    assert steps["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    assert channels == {"train": prep_output("train"), "validation": prep_output("validation"),
                        "schema": prep_output("schema")}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_the_problem_type_sets_objective_gate_path_and_direction(compile_with, problem):
    spec = PROBLEMS[problem]
    d = doc(compile_with(problem_type=problem))
    steps = all_steps(compile_with(problem_type=problem))
    objective = steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"Type": spec.tuning_direction, "MetricName": spec.tuning_metric}
    assert steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]["RandomSeed"] == 0  # same trials each run
    condition, = steps["QualityGate"]["Arguments"]["Conditions"]
    assert condition["Type"] == {"Maximize": "GreaterThanOrEqualTo", "Minimize": "LessThanOrEqualTo"}[spec.gate_direction]
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == spec.gate_path
    threshold, = [p for p in d["Parameters"] if p["Name"] == "QualityThreshold"]
    assert threshold["DefaultValue"] == "baseline+10%"
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--gate-metric") + 1] == spec.gate_metric
    assert arguments[arguments.index("--gate-direction") + 1] == spec.gate_direction
    assert [m["Name"] for m in steps["Tune"]["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]
            ["MetricDefinitions"]] == [spec.tuning_metric]
    assert f'"{problem}"' in steps["Tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]["problem_type"]


def test_regression_and_multiclass_really_differ_from_binary(compile_with):
    paths = {p: all_steps(compile_with(problem_type=p))["QualityGate"]["Arguments"]["Conditions"][0]
             ["LeftValue"]["Std:JsonGet"]["Path"] for p in ("binary", "multiclass", "regression")}
    assert paths == {"binary": "binary_classification_metrics.roc_auc.value",
                     "multiclass": "multiclass_classification_metrics.accuracy.value",
                     "regression": "regression_metrics.r2.value"}


# --- parameters ------------------------------------------------------------------------------


def test_parameters_are_typed_with_their_defaults(compile_with):
    params = {p["Name"]: p for p in doc(compile_with())["Parameters"]}
    expected = {
        "InputData": ("String", "s3://ml-pipelines-dev/purchase-intent/data/online_shoppers_synthetic.csv"),
        "ProcessingInstanceType": ("String", "ml.m5.xlarge"),
        "ProcessingInstanceCount": ("Integer", 1),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "TrainingInstanceCount": ("Integer", 1),
        "MaxTuningJobs": ("Integer", 4),
        "MaxParallelTuningJobs": ("Integer", 2),
        "QualityThreshold": ("String", "baseline+10%"),
        "Schema": ("String", ""),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
    }
    for name, (kind, default) in expected.items():
        assert (params[name]["Type"], params[name]["DefaultValue"]) == (kind, default), name
        assert type(params[name]["DefaultValue"]) is type(default), name
    assert params["ModelApprovalStatus"]["EnumValues"] == ["PendingManualApproval", "Approved", "Rejected"]
    assert all("EnumValues" not in p for n, p in params.items() if n != "ModelApprovalStatus")


def test_parameter_defaults_follow_the_environment_and_flags(compile_with):
    prod = {p["Name"]: p["DefaultValue"] for p in doc(compile_with(env="prod"))["Parameters"]}
    assert (prod["MaxTuningJobs"], prod["MaxParallelTuningJobs"], prod["TrainingInstanceType"]) == (20, 4, "ml.m5.2xlarge")
    assert prod["InputData"].startswith("s3://ml-pipelines-prod/")
    other = {p["Name"]: p["DefaultValue"] for p in doc(compile_with(bucket="other"))["Parameters"]}
    assert other["InputData"].startswith("s3://other/")


def test_the_compiled_parameters_match_the_json(compile_with):
    compiled = compile_with()
    assert [p["Name"] for p in doc(compiled)["Parameters"]] == list(compiled.parameters)
    assert compiled.parameters["QualityThreshold"].kind == "String"


# --- roles, regions, determinism -------------------------------------------------------------


def test_the_role_is_the_placeholder_until_one_is_given(compile_with):
    def roles(compiled):
        return {v["RoleArn"] for v in walk(doc(compiled)["Steps"]) if isinstance(v, dict) and "RoleArn" in v}

    assert roles(compile_with()) == {PLACEHOLDER_ROLE}
    assert roles(compile_with(role_arn=FAKE_ROLE)) == {FAKE_ROLE}


def test_compile_needs_a_region():
    cfg = example_config(region=None)
    with pytest.raises(ConfigError, match="compile needs a region"):
        compile_pipeline(example().definition(cfg), cfg)


def test_compiling_twice_in_one_process_gives_the_same_bytes(compile_with):
    cfg = example_config()
    assert compile_pipeline(example().definition(cfg), cfg).definition == compile_with().definition


def test_the_tuning_job_name_is_not_timestamped(compile_with):
    """SDK v2 writes a compile-time job name into the tuner's hyperparameters; the compiler writes
    `<pipeline>-<step>` there, so two compiles give the same bytes."""
    hps = all_steps(compile_with())["Tune"]["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
    assert hps["sagemaker_job_name"] == '"purchase-intent-Tune"'
    assert not re.search(r"20\d\d-\d\d-\d\d-\d\d-\d\d-\d\d", compile_with().definition)


# --- offline, and without the SageMaker SDK ----------------------------------------------------


@pytest.mark.parametrize("tuning", [True, False])
def test_compile_opens_no_connection_at_all(monkeypatch, fake_aws, tuning):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("compile must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    cfg = example_config(tuning=tuning)
    compile_pipeline(example().definition(cfg), cfg)
    assert attempts == []


# Run as `python -c`: deploy.py compile in a process where importing the SageMaker SDK fails.
WITHOUT_THE_SDK = """
import importlib.abc, runpy, sys

class NoSdk(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "sagemaker":
            raise ImportError(f"compile imported {name}")

sys.meta_path.insert(0, NoSdk())
sys.argv = ["deploy.py", *sys.argv[1:]]
runpy.run_path("deploy.py", run_name="__main__")
"""


def test_compile_needs_no_sagemaker_sdk(offline_env, tmp_path, compile_with):
    out = tmp_path / "pipeline.json"
    done = subprocess.run([sys.executable, "-c", WITHOUT_THE_SDK, "compile", "--definition", EXAMPLE_DEF, "--region", REGION, "--output", str(out)],
                          cwd=PROJECT_ROOT, env=offline_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == compile_with().definition


def test_compile_says_one_line_even_when_warnings_are_errors(offline_env, tmp_path):
    """No warning or log may reach the user's terminal, or fail a run that treats warnings as errors."""
    out = tmp_path / "pipeline.json"
    done = subprocess.run([sys.executable, "-W", "error", "deploy.py", "compile", "--definition", EXAMPLE_DEF, "--region", REGION, "--output",
                           str(out)], cwd=PROJECT_ROOT, env=offline_env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", f"wrote {out} ({out.stat().st_size} bytes)\n")


# --- code by content hash --------------------------------------------------------------------


def code_uris(compiled) -> set[str]:
    return {v for v in walk(doc(compiled)["Steps"]) if isinstance(v, str) and "/code/" in v and v.startswith(("s3://", '"s3://'))}


def test_code_uris_carry_the_sha256_of_the_bytes_uploaded(compile_with):
    compiled = compile_with()
    assert len(compiled.assets) == 3
    for uri, data in compiled.assets.items():
        assert uri.startswith("s3://ml-pipelines-dev/purchase-intent/code/")
        assert uri.split("/")[-2] == hashlib.sha256(data).hexdigest()
        assert uri in compiled.definition
    assert {u.strip('"') for u in code_uris(compiled)} == set(compiled.assets)
    by_name = {uri.rsplit("/", 1)[1]: data for uri, data in compiled.assets.items()}
    assert by_name["preprocess.py"] == (PROJECT_ROOT / "processing_scripts/preprocess.py").read_bytes()
    assert by_name["evaluate.py"] == (PROJECT_ROOT / "processing_scripts/evaluate.py").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(by_name["sourcedir.tar.gz"])) as tar:  # the training code and the feature set
        shipped = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    training = PROJECT_ROOT / "training_scripts"
    assert shipped == {**{p.relative_to(training).as_posix(): p.read_bytes() for p in training.rglob("*.py")
                          if "__pycache__" not in p.parts},
                       "feature_sets/shoppers.py": (PROJECT_ROOT / "examples/purchase_intent/shoppers.py").read_bytes()}


@pytest.fixture
def project_copy(tmp_path, monkeypatch):
    """The container scripts copied to a root of our own, where the tabular pipeline finds them, so a test can
    change them."""
    from pipelines import tabular

    for folder in ("processing_scripts", "training_scripts"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(tabular, "files", lambda package: tmp_path / package)
    return tmp_path


def fresh_compile():
    cfg = example_config()
    return compile_pipeline(example().definition(cfg), cfg)


def test_changing_a_script_changes_its_uri_and_nothing_else(project_copy, compile_with):
    before = fresh_compile()
    assert before.definition == compile_with().definition  # a copy of the same files: the same JSON
    with open(project_copy / "processing_scripts/evaluate.py", "a") as f:
        f.write("\n# changed\n")
    after = fresh_compile()
    old, = set(before.assets) - set(after.assets)
    new, = set(after.assets) - set(before.assets)
    assert old.endswith("/evaluate.py") and new.endswith("/evaluate.py")
    assert before.definition.replace(old, new) == after.definition


def test_changing_a_training_file_changes_the_source_bundle_uri(project_copy):
    before = fresh_compile()
    (project_copy / "training_scripts/train.py").write_text("print('another model')\n")
    after = fresh_compile()
    old, = set(before.assets) - set(after.assets)
    new, = set(after.assets) - set(before.assets)
    assert old.endswith("/sourcedir.tar.gz") and new.endswith("/sourcedir.tar.gz")
    assert before.definition.replace(old, new) == after.definition


def test_pack_is_byte_identical_whatever_the_mtimes_and_caches(tmp_path):
    folder = tmp_path / "code"
    shutil.copytree(PROJECT_ROOT / "training_scripts", folder, ignore=shutil.ignore_patterns("__pycache__"))
    first = pack(folder)
    assert pack(folder) == first
    for path in folder.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"junk")
    (folder / "stray.pyc").write_bytes(b"junk")
    assert pack(folder) == first


def test_pack_does_not_depend_on_creation_order(tmp_path):
    files = {"b.py": b"b", "a/z.py": b"z", "a/y.py": b"y", "c.txt": b"c"}
    for order, root in ((sorted(files), tmp_path / "one"), (sorted(files, reverse=True), tmp_path / "two")):
        for name in order:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(files[name])
    assert pack(tmp_path / "one") == pack(tmp_path / "two")


def test_pack_has_sorted_entries_with_fixed_metadata(tmp_path):
    (tmp_path / "b.py").write_text("b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.py").write_text("a")
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "a.py").chmod(0o755)
    data = pack(tmp_path)
    assert gzip.decompress(data)  # a gzip stream ...
    assert data[4:8] == b"\0\0\0\0"  # ... whose header has mtime 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["a.py", "b.py", "sub/a.py"]
        assert {(m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0o644, 0, 0, "", "")}
        assert tar.extractfile("sub/a.py").read() == b"a"
