"""Tuning: search strategies in process, and tuning jobs driving real training subprocesses."""

import dataclasses
import io
import json
import math
import re
import statistics
import tarfile
from pathlib import Path

import pytest

from pipelines.local import tuning
from pipelines.local.jobs import JobFailed, run_tuning, trial_name
from test_jobs import make_ctx, tar_gz

SCRIPTS = Path(__file__).parent / "scripts"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def param(kind, low=None, high=None, scaling="Auto", values=None):
    spec = {"Name": "p"}
    if kind == "Categorical":
        spec["Values"] = values
    else:
        spec.update(MinValue=str(low), MaxValue=str(high), ScalingType=scaling)
    return tuning.parse_ranges({f"{kind}ParameterRanges": [spec]})[0]


def samples(parameter, n=2000):
    rng = __import__("random").Random(0)
    return [float(parameter.value_at(rng.random())) for _ in range(n)]


# --- ranges and scaling ----------------------------------------------------------


def test_linear_and_auto_sample_uniformly():
    for scaling in ("Linear", "Auto"):
        values = samples(param("Continuous", 0, 10, scaling))
        assert 0 <= min(values) and max(values) <= 10
        assert statistics.median(values) == pytest.approx(5, abs=0.5)


def test_logarithmic_samples_uniformly_in_log_space():
    values = samples(param("Continuous", 0.001, 10, "Logarithmic"))
    assert 0.001 <= min(values) and max(values) <= 10
    assert statistics.median(values) == pytest.approx(0.1, rel=0.3)  # the geometric midpoint


def test_reverse_logarithmic_samples_densely_near_one():
    values = samples(param("Continuous", 0.5, 0.999, "ReverseLogarithmic"))
    assert 0.5 <= min(values) and max(values) <= 0.999
    assert statistics.median(values) == pytest.approx(1 - math.sqrt(0.5 * 0.001), abs=0.01)


def test_integers_cover_the_range_evenly_and_print_as_integers():
    parameter = param("Integer", 3, 5)
    rng = __import__("random").Random(0)
    drawn = [parameter.value_at(rng.random()) for _ in range(3000)]
    assert set(drawn) == {"3", "4", "5"}
    assert all(abs(drawn.count(v) - 1000) < 120 for v in ("3", "4", "5"))
    assert set(samples(param("Integer", 1, 1000, "Logarithmic"))) <= set(map(float, range(1, 1001)))


@pytest.mark.parametrize("kind, low, high, scaling, problem", [
    ("Continuous", 0, 1, "Logarithmic", "MinValue > 0"),
    ("Integer", 0, 1, "ReverseLogarithmic", "continuous ranges only"),
    ("Continuous", 0.5, 1.5, "ReverseLogarithmic", "MaxValue < 1"),
    ("Continuous", 2, 1, "Linear", "greater than MaxValue"),
    ("Integer", 1.5, 3, "Linear", "must be integers"),
    ("Continuous", 0, 1, "Cubic", "ScalingType"),
])
def test_invalid_ranges_are_refused(kind, low, high, scaling, problem):
    with pytest.raises(ValueError, match=problem):
        param(kind, low, high, scaling)


# --- strategies --------------------------------------------------------------------

CATEGORICAL = {"CategoricalParameterRanges": [{"Name": "a", "Values": ["x", "y"]},
                                              {"Name": "b", "Values": ["1", "2", "3"]}]}
NUMERIC = {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}],
           "IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "9", "ScalingType": "Auto"}]}


def config(strategy, ranges, max_jobs=None):
    limits = {"MaxParallelTrainingJobs": 1, **({"MaxNumberOfTrainingJobs": max_jobs} if max_jobs else {})}
    return {"Strategy": strategy, "ParameterRanges": ranges, "ResourceLimits": limits}


def proposals(strategy, count):
    return [strategy.propose(i, [], []) for i in range(count)]


def test_grid_enumerates_every_combination_in_a_fixed_order():
    strategy, count = tuning.plan(config("Grid", CATEGORICAL), seed=1)
    assert count == 6
    assert [tuple(p.values()) for p in proposals(strategy, count)] == [
        ("x", "1"), ("x", "2"), ("x", "3"), ("y", "1"), ("y", "2"), ("y", "3")]
    assert tuning.plan(config("Grid", CATEGORICAL, max_jobs=4), seed=1)[1] == 4


def test_grid_takes_categorical_ranges_only():
    with pytest.raises(ValueError, match="categorical parameter ranges only"):
        tuning.plan(config("Grid", NUMERIC), seed=1)


def test_random_is_reproducible_from_the_seed_and_within_ranges():
    first = proposals(tuning.plan(config("Random", NUMERIC, 20), seed=7)[0], 20)
    assert first == proposals(tuning.plan(config("Random", NUMERIC, 20), seed=7)[0], 20)
    assert first != proposals(tuning.plan(config("Random", NUMERIC, 20), seed=8)[0], 20)
    assert all(0 <= float(p["x"]) <= 1 and p["n"] in set("123456789") for p in first)


def test_seed_comes_from_the_job_name_unless_given():
    assert tuning.seed_for("tune-a") == tuning.seed_for("tune-a") != tuning.seed_for("tune-b")
    assert tuning.seed_for("tune-a", 42) == 42


@pytest.mark.parametrize("strategy, problem", [("Hyperband", "Hyperband .* not supported"),
                                               ("Evolutionary", "unknown tuning Strategy")])
def test_unsupported_strategies_fail_clearly(strategy, problem):
    with pytest.raises(ValueError, match=problem):
        tuning.plan(config(strategy, NUMERIC, 4), seed=1)


def peak(params):
    """A smooth objective with its maximum at x = 0.8, n = 7."""
    return -((float(params["x"]) - 0.8) ** 2) - 0.01 * (int(params["n"]) - 7) ** 2


def optimise(strategy_name, seed, count=16, parallel=2):
    strategy, _ = tuning.plan(config(strategy_name, NUMERIC, count), seed=seed)
    return tuning.search(strategy, count, parallel, lambda i, p: tuning.Trial(i, p, peak(p)))


def test_bayesian_optimises_deterministically_within_ranges():
    trials = optimise("Bayesian", seed=3)
    assert [t.params for t in trials] == [t.params for t in optimise("Bayesian", seed=3)]
    assert all(0 <= float(t.params["x"]) <= 1 and 1 <= int(t.params["n"]) <= 9 for t in trials)
    best = max(t.score for t in trials)
    assert best > -0.005
    # Its model-guided half does better than its random start.
    assert statistics.mean(t.score for t in trials[8:]) > statistics.mean(t.score for t in trials[:4])


def test_search_bases_each_proposal_on_a_fixed_history():
    seen = {}

    class Recorder:
        uses_history = True

        def propose(self, index, observed, pending):
            seen[index] = ([t.index for t in observed], len(pending))
            return {"i": str(index)}

    tuning.search(Recorder(), 5, 2, lambda i, p: tuning.Trial(i, p, float(i)))
    # Trial k sees exactly trials 0..k-2 finished (2 in parallel), whatever finishes first.
    assert seen == {0: ([], 0), 1: ([], 1), 2: ([0], 1), 3: ([0, 1], 1), 4: ([0, 1, 2], 1)}


# --- tuning jobs -------------------------------------------------------------------


def tuning_request(ctx, strategy, ranges, *, objective="Maximize", max_jobs=4, parallel=2, static=None):
    ctx.store.put_bytes("s3://bkt/code/sourcedir.tar.gz", tar_gz({"train.py": (SCRIPTS / "train.py").read_bytes()}))
    ctx.store.put_bytes("s3://bkt/data/train/a.csv", b"1,2\n")
    return {
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "ParameterRanges": ranges, "TrainingJobEarlyStoppingType": "Off",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
            "HyperParameterTuningJobObjective": {"Type": objective, "MetricName": "validation:score"}},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": '"train.py"',
                                      "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"',
                                      **(static or {})},
            "AlgorithmSpecification": {
                "TrainingImage": XGBOOST, "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "validation:score", "Regex": "validation:score=([-+0-9.eE]+);"}]},
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bkt/data/train", "S3DataDistributionType": "FullyReplicated"}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://bkt/tune"},
            "HyperParameterTuningResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            "RoleArn": "arn:aws:iam::123456789012:role/x"},
    }


def timeline(log: Path) -> list[tuple[str, float]]:
    """The trials' `timeline start|end TIME` lines in the job log (a job writes nowhere else on this machine)."""
    return [(kind, float(t)) for kind, t in re.findall(r"timeline (start|end) (\S+)", log.read_text())] \
        if log.is_file() else []


def max_overlap(log: Path) -> int:
    events = sorted((t, +1 if kind == "start" else -1) for kind, t in timeline(log))
    running = peak_running = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):
        running += change
        peak_running = max(peak_running, running)
    return peak_running


ETA_RANGE = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "0.3",
                                            "ScalingType": "Logarithmic"}]}


def test_random_tuning_runs_the_jobs_in_parallel_and_ranks_them(tmp_path):
    ctx = make_ctx(tmp_path)
    request = tuning_request(ctx, "Random", ETA_RANGE, max_jobs=5, parallel=2,
                             static={"timeline": '"yes"', "sleep": "0.4"})
    response = run_tuning("tune-1", request, ctx)
    summaries = response["TrainingJobSummaries"]
    assert response["HyperParameterTuningJobStatus"] == "Completed"
    assert response["HyperParameterTuningJobArn"].endswith(":hyper-parameter-tuning-job/tune-1")
    assert len(summaries) == 5 and max_overlap(ctx.log_path) == 2
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert values == sorted(values, reverse=True)
    assert values == [float(s["TunedHyperParameters"]["eta"]) for s in summaries]  # the script reports eta
    assert response["BestTrainingJob"] == summaries[0]
    assert {s["TrainingJobName"] for s in summaries} == {trial_name("tune-1", i) for i in range(5)}
    assert all(re.fullmatch(r"tune-1-00[1-5]-[0-9a-f]{8}", s["TrainingJobName"]) for s in summaries)
    assert ctx.store.exists(f"s3://bkt/tune/{summaries[0]['TrainingJobName']}/output/model.tar.gz")
    assert response["TrainingJobStatusCounters"]["Completed"] == 5
    assert response["ObjectiveStatusCounters"] == {"Succeeded": 5, "Pending": 0, "Failed": 0}
    assert f"[{trial_name('tune-1', 0)}] validation:score=" in ctx.log_path.read_text()


def test_minimize_picks_the_lowest_and_failed_jobs_are_counted(tmp_path):
    ctx = make_ctx(tmp_path)
    ranges = {"CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.2", "0.1", "0.3"]},
                                             {"Name": "mode", "Values": ["ok", "fail"]}]}
    response = run_tuning("tune-2", tuning_request(ctx, "Grid", ranges, objective="Minimize", max_jobs=6,
                                                   parallel=3), ctx)
    summaries = response["TrainingJobSummaries"]
    assert [s["TunedHyperParameters"] for s in summaries[:3]] == [
        {"eta": "0.1", "mode": "ok"}, {"eta": "0.2", "mode": "ok"}, {"eta": "0.3", "mode": "ok"}]
    assert response["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize", "MetricName": "validation:score", "Value": 0.1}
    assert [s["ObjectiveStatus"] for s in summaries[3:]] == ["Failed"] * 3
    assert all(s["FailureReason"].startswith("AlgorithmError") for s in summaries[3:])
    assert response["TrainingJobStatusCounters"]["NonRetryableError"] == 3
    assert response["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 3}


def test_tuning_fails_only_when_no_job_succeeds(tmp_path):
    ctx = make_ctx(tmp_path)
    ranges = {"CategoricalParameterRanges": [{"Name": "mode", "Values": ["fail"]}]}
    with pytest.raises(JobFailed, match="no training job succeeded") as failure:
        run_tuning("tune-3", tuning_request(ctx, "Grid", ranges), ctx)
    assert failure.value.error_type == "AlgorithmError"
    assert failure.value.response["HyperParameterTuningJobStatus"] == "Failed"
    assert len(failure.value.response["TrainingJobSummaries"]) == 1


def test_training_jobs_of_a_tuning_job_get_the_tuning_objective(tmp_path):
    ctx = make_ctx(tmp_path)
    response = run_tuning("tune-4", tuning_request(ctx, "Random", ETA_RANGE, max_jobs=1), ctx)
    name = response["BestTrainingJob"]["TrainingJobName"]
    log = ctx.log_path.read_text()
    assert name in log
    hps = (ctx.work_dir / name / "algo-1" / "input/config/hyperparameters.json").read_text()
    assert '"_tuning_objective_metric": "validation:score"' in hps


def test_bad_tuning_requests_are_client_errors(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(JobFailed, match="Hyperband") as failure:
        run_tuning("tune-5", tuning_request(ctx, "Hyperband", ETA_RANGE), ctx)
    assert failure.value.error_type == "ClientError"


def test_concurrent_trials_share_the_machine_cores(tmp_path):
    """Each trial would have its own instance in SageMaker; locally the cores are split between them."""
    ctx = dataclasses.replace(make_ctx(tmp_path), cpus=4)
    response = run_tuning("tune-5", tuning_request(ctx, "Random", ETA_RANGE, max_jobs=2, parallel=2), ctx)
    for summary in response["TrainingJobSummaries"]:
        model = tmp_path / summary["TrainingJobName"]
        with tarfile.open(fileobj=io.BytesIO(ctx.store.get_bytes(
                f"s3://bkt/tune/{summary['TrainingJobName']}/output/model.tar.gz"))) as tar:
            tar.extractall(model, filter="data")
        report = json.loads((model / "report-algo-1.json").read_text())
        assert report["env"]["SM_NUM_CPUS"] == "2"
        assert json.loads(report["env"]["SM_TRAINING_ENV"])["num_cpus"] == 2


def test_each_trial_is_reported_as_it_ends_with_the_best_so_far(tmp_path):
    reports = []
    ctx = dataclasses.replace(make_ctx(tmp_path), progress=reports.append)
    ranges = {"CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.2", "0.3", "0.1"]},
                                             {"Name": "mode", "Values": ["ok", "fail"]}]}
    run_tuning("tune-6", tuning_request(ctx, "Grid", ranges, max_jobs=4, parallel=1), ctx)
    assert [(r["trial"], r["of"], r["hyperparameters"]["eta"], r["value"], r["best"], r["best_trial"])
            for r in reports] == [(1, 4, "0.2", 0.2, 0.2, 1), (2, 4, "0.2", None, 0.2, 1),
                                  (3, 4, "0.3", 0.3, 0.3, 3), (4, 4, "0.3", None, 0.3, 3)]
    assert reports[1]["failure_reason"].startswith("AlgorithmError")
    assert all(r["objective"] == "validation:score" for r in reports)


def test_a_stopped_tuning_job_ends_its_running_trials_and_starts_no_more(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.local.stopping import JobStopped

    ctx = make_ctx(tmp_path)
    request = tuning_request(ctx, "Random", ETA_RANGE, max_jobs=6, parallel=2,
                             static={"timeline": '"yes"', "sleep": "60"})
    with ThreadPoolExecutor(1) as pool:
        tuning_job = pool.submit(run_tuning, "tune-7", request, ctx)
        while len(timeline(ctx.log_path)) < 2:
            assert not tuning_job.done(), tuning_job.exception()
            __import__("time").sleep(0.05)
        ctx.stop.request("a test")
        with pytest.raises(JobStopped):
            tuning_job.result(timeout=30)  # not 60 s: the sleeping trials were ended
    assert [kind for kind, _ in timeline(ctx.log_path)] == ["start", "start"]


def test_early_stopping_stops_a_trial_worse_than_the_median_of_earlier_ones_at_the_same_point(tmp_path):
    """SageMaker's rule (TrainingJobEarlyStoppingType Auto): after each report of the objective, a trial whose
    value is worse than the median of earlier trials' running averages at that point is stopped; it counts as
    Stopped, not failed, and cannot be the best."""
    reports = []
    ctx = dataclasses.replace(make_ctx(tmp_path), progress=reports.append)
    request = tuning_request(ctx, "Grid", {"CategoricalParameterRanges": [
        {"Name": "eta", "Values": ["0.9", "0.1", "0.95"]}]}, max_jobs=3, parallel=1, static={"reports": "3", "report_sleep": "0.5"})
    request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto"
    response = run_tuning("tune-8", request, ctx)
    by_eta = {s["TunedHyperParameters"]["eta"]: s for s in response["TrainingJobSummaries"]}
    assert by_eta["0.1"]["TrainingJobStatus"] == "Stopped"
    assert by_eta["0.1"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(0.1 / 3)
    assert by_eta["0.9"]["TrainingJobStatus"] == by_eta["0.95"]["TrainingJobStatus"] == "Completed"
    assert response["BestTrainingJob"]["TunedHyperParameters"]["eta"] == "0.95"
    assert response["TrainingJobStatusCounters"]["Stopped"] == 1
    assert [r["status"] for r in reports] == ["Completed", "Stopped", "Completed"]
    assert "early stopping" in ctx.log_path.read_text() or by_eta["0.1"].get("FailureReason") is None


def test_the_tuning_jobs_runtime_limit_stops_running_trials_and_launches_no_more(tmp_path, monkeypatch):
    """ResourceLimits.MaxRuntimeInSeconds (at least 120 in SageMaker; shortened here): at the limit the running
    trials are stopped and no more start; the tuning job ends with the best completed trial."""
    from pipelines.local import tuning as search

    monkeypatch.setattr(search, "MIN_RUNTIME", 1)
    beats = []
    ctx = dataclasses.replace(make_ctx(tmp_path), heartbeat=beats.append)
    request = tuning_request(ctx, "Grid", {"CategoricalParameterRanges": [
        {"Name": "sleep", "Values": ["0", "60", "0.0"]}]}, max_jobs=3, parallel=1)
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 3
    started = __import__("time").monotonic()
    response = run_tuning("tune-9", request, ctx)
    assert __import__("time").monotonic() - started < 30  # not the 60 s the second trial sleeps
    statuses = {s["TunedHyperParameters"]["sleep"]: s["TrainingJobStatus"] for s in response["TrainingJobSummaries"]}
    assert statuses == {"0": "Completed", "60": "Stopped"}  # the third never started
    assert response["BestTrainingJob"]["TunedHyperParameters"]["sleep"] == "0"
    assert response["ConsumedResources"]["RuntimeInSeconds"] >= 3
    trial_beats = [b for b in beats if "trial" in b]
    assert trial_beats and all({"done", "left", "seconds_left", "line"} <= set(b) for b in trial_beats)


def test_a_tuning_jobs_runtime_below_sagemakers_least_is_a_client_error(tmp_path):
    ctx = make_ctx(tmp_path)
    request = tuning_request(ctx, "Random", ETA_RANGE)
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = 60
    with pytest.raises(JobFailed, match=r"MaxRuntimeInSeconds must be 120 to 15768000") as failure:
        run_tuning("tune-10", request, ctx)
    assert failure.value.error_type == "ClientError"
