"""The scheduler, with fake job handlers (no subprocesses): order, concurrency, branches,
failure, cache, retry, resume, parameters, definition errors and the execution record."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from pipelines.local import LocalHome, RunError, run_pipeline
from pipelines.local.cache import StepCache
from pipelines.local.jobs import JobFailed
from pipelines.local.plan import parse_duration
from pipelines.local.registry import Registry
from pipelines.local.runner import retry_delay
from pipelines.spec import RetryPolicy
from pipelines.local.storage import LocalStore

JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
TRANSIENT = "SageMaker.JOB_INTERNAL_ERROR"
RETRY = {"ExceptionType": [TRANSIENT], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2}


class FakeJobs:
    """Job handlers with the `jobs.run_*` signature that write outputs to the store and
    record what ran. `failures[step]` is a queue of error types its next attempts raise;
    `delays[step]` how long its jobs take."""

    def __init__(self, store: LocalStore):
        self.store = store
        self.failures: dict[str, list[str]] = {}
        self.reports: dict[str, dict] = {}
        self.delays: dict[str, float] = {}
        self.calls: list[tuple[str, str, dict, object]] = []  # (step, job name, request, ctx)
        self.running = self.max_running = 0
        self.lock = threading.Lock()

    def handlers(self) -> dict:
        return {kind: (lambda name, request, ctx, kind=kind: self.run(kind, name, request, ctx))
                for kind in ("Processing", "Training", "Tuning", "Transform")}

    def steps_run(self) -> list[str]:
        return [step for step, *_ in self.calls]

    def run(self, kind: str, job_name: str, request: dict, ctx) -> dict:
        step = job_name.rsplit("-", 1)[0]
        with self.lock:
            self.calls.append((step, job_name, request, ctx))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(self.delays.get(step, 0))
            queue = self.failures.get(step, [])
            if queue:
                error_type = queue.pop(0)
                raise JobFailed(f"{step} broke ({error_type})", response={"FailureReason": "broke"}, error_type=error_type)
            return getattr(self, kind.lower())(step, job_name, request)
        finally:
            with self.lock:
                self.running -= 1

    def processing(self, step, job_name, request):
        for output in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
            report = json.dumps(self.reports.get(step, {"step": step})).encode()
            self.store.put_bytes(output["S3Output"]["S3Uri"] + "/report.json", report)
        return {**request, "ProcessingJobName": job_name, "ProcessingJobStatus": "Completed"}

    def training(self, step, job_name, request):
        model = f"{request['OutputDataConfig']['S3OutputPath']}/{job_name}/output/model.tar.gz"
        self.store.put_bytes(model, b"model")
        return {**request, "TrainingJobName": job_name, "ModelArtifacts": {"S3ModelArtifacts": model}}

    def tuning(self, step, job_name, request):
        best = {"TrainingJobName": f"{job_name}-001-abcd"}
        return {"HyperParameterTuningJobName": job_name, "TrainingJobSummaries": [best], "BestTrainingJob": best}

    def transform(self, step, job_name, request):
        return {**request, "TransformJobName": job_name}


class Harness:
    def __init__(self, tmp_path):
        self.home = LocalHome(tmp_path / "home")
        self.store = LocalStore(self.home.s3)
        self.jobs = FakeJobs(self.store)
        self.events: list[dict] = []
        self.sleeps: list[float] = []

    def run(self, definition, **kwargs) -> dict:
        return run_pipeline(definition, pipeline_name="p", home=self.home, store=self.store,
                            handlers=self.jobs.handlers(), on_event=self.events.append, sleep=self.sleeps.append,
                            **kwargs)

    def resume(self, execution_id: str, **kwargs) -> dict:
        return self.run(None, resume=execution_id, **kwargs)


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)


# --- definition builders ---------------------------------------------------------------


def definition(*steps, parameters=()) -> dict:
    return {"Version": "2020-12-01", "Parameters": list(parameters), "Steps": list(steps)}


def get(target: str) -> dict:
    return {"Get": target}


def output(step: str, name: str = "out") -> dict:
    return get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri")


def processing(name: str, *inputs, code: str = "s3://bkt/code/abc/run.py", **extra) -> dict:
    destination = {"Std:Join": {"On": "/", "Values": ["s3://bkt/runs", get("Execution.PipelineExecutionId"), name]}}
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {"ImageUri": "img", "ContainerEntrypoint": ["python3", code]},
            "ProcessingInputs": [{"InputName": f"in{i}", "S3Input": {"S3Uri": uri}} for i, uri in enumerate(inputs)],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {"S3Uri": destination}}]},
        },
        **extra,
    }


def training(name: str, data, **extra) -> dict:
    return {"Name": name, "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": "xgb"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": data}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/models"},
    }, **extra}


def condition(name: str, conditions: list, if_steps=(), else_steps=()) -> dict:
    return {"Name": name, "Type": "Condition",
            "Arguments": {"Conditions": conditions, "IfSteps": list(if_steps), "ElseSteps": list(else_steps)}}


def fail(name: str, message) -> dict:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


def parameter(name: str, kind: str, default=None, **extra) -> dict:
    return {"Name": name, "Type": kind, **({} if default is None else {"DefaultValue": default}), **extra}


def statuses(record: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in record["steps"]}


def step_record(record: dict, name: str) -> dict:
    return next(step for step in record["steps"] if step["name"] == name)


# --- order, concurrency, records -------------------------------------------------------


def test_steps_run_after_what_they_reference_and_depend_on(h):
    record = h.run(definition(
        processing("C", output("B"), DependsOn=["A"]),
        processing("B", output("A")),
        processing("A", "s3://bkt/raw"),
    ))
    assert record["status"] == "Succeeded"
    assert h.jobs.steps_run() == ["A", "B", "C"]
    b_input = step_record(record, "B")["arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert b_input == f"s3://bkt/runs/{record['execution_id']}/A"


def test_independent_steps_run_concurrently_up_to_the_limit(h):
    h.jobs.delays = dict.fromkeys("ABCD", 0.15)
    record = h.run(definition(*(processing(name, "s3://bkt/raw") for name in "ABCD")), max_parallel_steps=2)
    assert record["status"] == "Succeeded"
    assert h.jobs.max_running == 2


def test_the_record_and_logs_are_written_under_runs(h):
    text = json.dumps(definition(processing("A", "s3://bkt/raw"), condition("Gate", [])), indent=3)
    record = h.run(text, execution_id="exec-1")
    run_dir = h.home.runs / "exec-1"
    assert (run_dir / "definition.json").read_text() == text
    assert json.loads((run_dir / "execution.json").read_text()) == record
    assert h.home.execution("exec-1") == record and h.home.executions() == [record]
    a = step_record(record, "A")
    assert (a["status"], a["attempts"][0]["status"], a["cache_hit"]) == ("Succeeded", "Succeeded", False)
    assert a["started"] <= a["ended"] and a["seconds"] >= 0
    assert JOB_NAME.fullmatch(a["job_name"]) and a["job_name"].startswith("A-")
    context = h.jobs.calls[0][3]
    assert context.work_dir == run_dir / "jobs" / a["job_name"] and context.work_dir.is_dir()
    assert context.log_path == run_dir / "logs" / "A.log" and a["log"] == str(context.log_path)
    assert '"Outcome": "True"' in (run_dir / "logs" / "Gate.log").read_text()
    assert record["parameters"] == {} and record["ended"] and record["resumes"] == 0


def test_events_report_progress(h):
    h.run(definition(processing("A", "s3://bkt/raw")))
    assert [(e["event"], e.get("step")) for e in h.events] == [
        ("execution_started", None), ("step_started", "A"), ("step_succeeded", "A"), ("execution_finished", None)
    ]
    assert h.events[-1]["status"] == "Succeeded" and all("time" in e and "execution_id" in e for e in h.events)


def test_job_names_are_valid_unique_and_short_for_tuning(h):
    long_name = "Tune-" + "x" * 70
    record = h.run(definition(
        {"Name": long_name, "Type": "Tuning", "Arguments": {"HyperParameterTuningJobConfig": {}, "TrainingJobDefinition": {}}},
        processing("P_" + "y" * 80, "s3://bkt/raw"),
    ))
    names = [step["job_name"] for step in record["steps"]]
    assert all(JOB_NAME.fullmatch(name) for name in names)
    assert len(names[0]) <= 32 and len(names[1]) <= 63
    again = h.run(definition(processing("P_" + "y" * 80, "s3://bkt/raw")))
    assert again["steps"][0]["job_name"] != names[1]


def test_a_model_step_names_the_model_a_transform_step_uses(h):
    model = {"Name": "Make-CreateModel", "Type": "Model",
             "Arguments": {"ExecutionRoleArn": "role", "PrimaryContainer": {"Image": "xgb"}}}
    transform = {"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": get("Steps.Make-CreateModel.ModelName"), "TransformOutput": {"S3OutputPath": "s3://bkt/scores"}}}
    record = h.run(definition(transform, model))
    model_name = step_record(record, "Make-CreateModel")["response"]["ModelName"]
    assert JOB_NAME.fullmatch(model_name)
    assert step_record(record, "Score")["arguments"]["ModelName"] == model_name
    assert h.jobs.calls[0][3].models[model_name]["PrimaryContainer"] == {"Image": "xgb"}


# --- conditions, Fail, failures --------------------------------------------------------


def gated(threshold_default=0.5):
    gate = condition(
        "Gate",
        [{"Type": "GreaterThanOrEqualTo", "LeftValue": get("Parameters.Score"), "RightValue": threshold_default}],
        if_steps=[processing("Good", output("Prep"))],
        else_steps=[fail("TooWeak", {"Std:Join": {"On": " ", "Values": ["score", get("Parameters.Score"), "is too low"]}})],
    )
    after_good = processing("AfterGood", output("Good"))
    return definition(processing("Prep", "s3://bkt/raw"), gate, after_good, parameters=[parameter("Score", "Float", 0.9)])


def test_condition_runs_only_the_chosen_branch(h):
    record = h.run(gated())
    assert record["status"] == "Succeeded"
    assert statuses(record) == {"Prep": "Succeeded", "Gate": "Succeeded", "Good": "Succeeded", "TooWeak": "NotRun",
                                "AfterGood": "Succeeded"}
    assert step_record(record, "Gate")["response"] == {"Outcome": "True"}


def test_a_branch_not_taken_and_what_depends_on_it_do_not_run(h):
    gate = condition("Gate", [{"Type": "Equals", "LeftValue": get("Parameters.Flag"), "RightValue": True}],
                     if_steps=[processing("Yes", "s3://bkt/raw")])
    record = h.run(definition(gate, processing("AfterYes", output("Yes")), parameters=[parameter("Flag", "Boolean", False)]))
    assert record["status"] == "Succeeded"
    assert statuses(record) == {"Gate": "Succeeded", "Yes": "NotRun", "AfterYes": "NotRun"}
    assert h.jobs.calls == []


def test_fail_step_fails_the_execution_with_its_message(h):
    record = h.run(gated(), parameters={"Score": "0.2"})
    assert record["status"] == "Failed"
    assert record["failure_reason"] == "score 0.2 is too low" and record["failed_step"] == "TooWeak"
    assert statuses(record) == {"Prep": "Succeeded", "Gate": "Succeeded", "Good": "NotRun", "TooWeak": "Failed",
                                "AfterGood": "NotRun"}
    assert "step_skipped" in {e["event"] for e in h.events}


def test_a_failing_step_stops_new_steps_but_running_ones_finish(h):
    h.jobs.failures["A"] = ["AlgorithmError"]
    h.jobs.delays["Slow"] = 0.2
    slow = processing("Slow", "s3://bkt/raw")
    record = h.run(definition(processing("A", "s3://bkt/raw"), slow, processing("B", output("A")),
                              processing("Later", "s3://bkt/raw")), max_parallel_steps=2)
    assert record["status"] == "Failed" and record["failure_reason"] == "A broke (AlgorithmError)"
    assert statuses(record) == {"A": "Failed", "Slow": "Succeeded", "B": "NotRun", "Later": "NotRun"}
    assert step_record(record, "A")["response"] == {"FailureReason": "broke"}


def test_a_condition_that_cannot_be_evaluated_fails_instead_of_choosing(h):
    gate = condition("Gate", [{"Type": "GreaterThan", "LeftValue": "high", "RightValue": 0.5}],
                     if_steps=[processing("Yes", "s3://bkt/raw")], else_steps=[processing("No", "s3://bkt/raw")])
    record = h.run(definition(gate))
    assert record["status"] == "Failed" and "GreaterThan cannot compare string 'high'" in record["failure_reason"]
    assert statuses(record) == {"Gate": "Failed", "Yes": "NotRun", "No": "NotRun"}


def test_an_unresolvable_argument_fails_its_step(h):
    record = h.run(definition(processing("A", get("Steps.B.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri")),
                              processing("B", "s3://bkt/raw")))
    assert statuses(record) == {"A": "Failed", "B": "Succeeded"}
    assert "no item named 'nope'" in record["failure_reason"]


def test_property_file_json_get_in_a_condition_gates_registration(h):
    h.jobs.reports["Evaluate"] = {"metrics": {"auc": {"value": 0.93}}}
    evaluate = processing("Evaluate", "s3://bkt/raw",
                          PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "out", "FilePath": "report.json"}])
    auc = {"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.Report"), "Path": "metrics.auc.value"}}
    register = {"Name": "Register-RegisterModel", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "grp", "ModelApprovalStatus": "Approved",
        "ModelMetrics": {"ModelQuality": {"Statistics": {"S3Uri": {"Std:Join": {"On": "/", "Values": [output("Evaluate"), "report.json"]}}}}},
        "InferenceSpecification": {"Containers": [{"Image": "xgb", "ModelDataUrl": "s3://bkt/model.tar.gz"}]}}}
    gate = condition("Gate", [{"Type": "GreaterThanOrEqualTo", "LeftValue": auc, "RightValue": get("Parameters.MinAuc")}],
                     if_steps=[register], else_steps=[fail("TooWeak", "weak")])
    record = h.run(definition(evaluate, gate, parameters=[parameter("MinAuc", "Float", 0.9)]))
    assert record["status"] == "Succeeded"
    assert step_record(record, "Evaluate")["property_files"] == {"Report": {"metrics": {"auc": {"value": 0.93}}}}
    registered = step_record(record, "Register-RegisterModel")["response"]
    assert registered["ModelPackageArn"] == "arn:aws:sagemaker:us-east-1:000000000000:model-package/grp/1"
    latest = Registry(h.home.registry).latest("grp")
    assert latest["PipelineExecutionId"] == record["execution_id"]
    assert latest["Metrics"] == {"ModelQuality.Statistics": {"metrics": {"auc": {"value": 0.93}}}}


def test_a_missing_property_file_fails_the_step_that_should_produce_it(h):
    evaluate = processing("Evaluate", "s3://bkt/raw",
                          PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "out", "FilePath": "missing.json"}])
    record = h.run(definition(evaluate))
    assert record["status"] == "Failed"
    assert "property file Report of step Evaluate" in record["failure_reason"] and "missing.json" in record["failure_reason"]


# --- cache -----------------------------------------------------------------------------


def cached(name="A", expire="P30D", **kwargs) -> dict:
    return processing(name, "s3://bkt/raw", CacheConfig={"Enabled": True, "ExpireAfter": expire}, **kwargs)


def test_a_second_run_reuses_a_cached_step(h):
    first = h.run(definition(cached(), processing("B", output("A"))))
    second = h.run(definition(cached(), processing("B", output("A"))))
    assert h.jobs.steps_run() == ["A", "B", "B"]
    hit = step_record(second, "A")
    assert hit["cache_hit"] is True and hit["status"] == "Succeeded" and hit["attempts"] == []
    assert hit["response"] == step_record(first, "A")["response"]
    b_input = step_record(second, "B")["arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert b_input == f"s3://bkt/runs/{first['execution_id']}/A"  # the earlier execution's data, as in SageMaker
    assert any(e["event"] == "step_cache_hit" and e["cached_from"] == first["execution_id"] for e in h.events)


def test_the_cache_key_covers_code_and_the_job_environment_but_not_output_locations(h):
    h.run(definition(cached()))
    h.run(definition(cached(code="s3://bkt/code/def/run.py")))
    assert h.jobs.steps_run() == ["A", "A"]
    arguments = {"AppSpecification": {"ImageUri": "img"}, "OutputDataConfig": {"S3OutputPath": "s3://a"},
                 "ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": "s3://a/1", "LocalPath": "/x"}}]},
                 "TransformOutput": {"S3OutputPath": "s3://t/1"}}
    moved = json.loads(json.dumps(arguments).replace("s3://a", "s3://b").replace("s3://t/1", "s3://t/2"))
    assert StepCache.key("Processing", arguments, "host") == StepCache.key("Processing", moved, "host")
    assert StepCache.key("Processing", arguments, "host") != StepCache.key("Training", arguments, "host")
    assert StepCache.key("Processing", arguments, "host") != StepCache.key("Processing", arguments, "image")


def test_cache_entries_expire(h):
    h.run(definition(cached(expire="PT1H")))
    (entry_path,) = h.home.cache.glob("*.json")
    entry = json.loads(entry_path.read_text())
    entry["created"] = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
    entry_path.write_text(json.dumps(entry))
    record = h.run(definition(cached(expire="PT1H")))
    assert step_record(record, "A")["cache_hit"] is False and h.jobs.steps_run() == ["A", "A"]


def test_a_cache_entry_whose_outputs_are_gone_is_not_used(h):
    first = h.run(definition(cached()))
    (h.home.s3 / "bkt" / "runs" / first["execution_id"] / "A" / "report.json").unlink()
    assert step_record(h.run(definition(cached())), "A")["cache_hit"] is False


def test_failed_steps_are_not_cached(h):
    h.jobs.failures["A"] = ["AlgorithmError"]
    assert h.run(definition(cached()))["status"] == "Failed"
    assert list(h.home.cache.glob("*.json")) == []
    assert step_record(h.run(definition(cached())), "A")["cache_hit"] is False


@pytest.mark.parametrize("text, expected", [
    ("P30D", timedelta(days=30)), ("PT1H", timedelta(hours=1)), ("P1Y2M", timedelta(days=425)),
    ("P1W", timedelta(weeks=1)), ("PT1M30.5S", timedelta(minutes=1, seconds=30.5)),
    # the forms AWS's step-caching guide documents: no P, either case
    ("30d", timedelta(days=30)), ("5y", timedelta(days=1825)), ("T16m", timedelta(minutes=16)),
    ("30dT5h", timedelta(days=30, hours=5)), ("30DT5h", timedelta(days=30, hours=5)), ("2m", timedelta(days=60)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text, "A") == expected


@pytest.mark.parametrize("text", ["P", "PT", "T", "P1DT", "1dt", "P1H", "30 d", "d30", "30dd", "1.5d", 30])
def test_bad_durations_are_refused_before_anything_runs(h, text):
    with pytest.raises(RunError, match="step A: CacheConfig ExpireAfter .* is not an ISO-8601 duration"):
        h.run(definition(cached(expire=text)))
    assert not h.home.runs.exists()


# --- retry -----------------------------------------------------------------------------


def test_a_transient_failure_is_retried_with_backoff(h):
    h.jobs.failures["Train"] = [TRANSIENT, TRANSIENT]
    record = h.run(definition(training("Train", "s3://bkt/raw", RetryPolicies=[RETRY])))
    train = step_record(record, "Train")
    assert record["status"] == "Succeeded" and h.sleeps == [1, 2]
    assert [(a["attempt"], a["status"], a["error_type"]) for a in train["attempts"]] == [
        (1, "Failed", TRANSIENT), (2, "Failed", TRANSIENT), (3, "Succeeded", None)]
    assert len({a["job_name"] for a in train["attempts"]}) == 3 and train["job_name"] == train["attempts"][-1]["job_name"]
    assert [e["attempt"] for e in h.events if e["event"] == "step_retry"] == [2, 3]


def test_retries_stop_after_max_attempts(h):
    h.jobs.failures["Train"] = [TRANSIENT] * 3
    record = h.run(definition(training("Train", "s3://bkt/raw", RetryPolicies=[RETRY])))
    assert record["status"] == "Failed" and len(step_record(record, "Train")["attempts"]) == 3


def test_a_permanent_failure_is_not_retried(h):
    h.jobs.failures["Train"] = ["AlgorithmError"]
    record = h.run(definition(training("Train", "s3://bkt/raw", RetryPolicies=[RETRY])))
    assert record["status"] == "Failed" and h.sleeps == []
    assert len(step_record(record, "Train")["attempts"]) == 1


def test_retry_delay_honours_the_expiry_window():
    policy = (RetryPolicy((TRANSIENT,), interval_seconds=10, backoff_rate=3.0, expire_after_min=1),)
    assert retry_delay(policy, TRANSIENT, 1, elapsed=0) == 10
    assert retry_delay(policy, TRANSIENT, 2, elapsed=20) == 30
    assert retry_delay(policy, TRANSIENT, 3, elapsed=50) is None
    assert retry_delay(policy, "SageMaker.CAPACITY_ERROR", 1, elapsed=0) is None


def test_a_retry_policy_needs_exactly_one_limit(h):
    policy = {"ExceptionType": [TRANSIENT], "MaxAttempts": 2, "ExpireAfterMin": 5}
    with pytest.raises(RunError, match="exactly one of MaxAttempts and ExpireAfterMin"):
        h.run(definition(training("Train", "s3://bkt/raw", RetryPolicies=[policy])))


# --- resume ----------------------------------------------------------------------------


def four_steps() -> dict:
    """A, then B and D (both after A), then C after B."""
    return definition(processing("A", "s3://bkt/raw"), processing("B", output("A")), processing("C", output("B")),
                      processing("D", output("A")))


def test_resume_reruns_only_the_failed_step_and_what_follows(h):
    h.jobs.failures["B"] = ["AlgorithmError"]
    failed = h.run(four_steps(), max_parallel_steps=1)
    assert statuses(failed) == {"A": "Succeeded", "B": "Failed", "C": "NotRun", "D": "NotRun"}
    kept = step_record(failed, "A")
    resumed = h.resume(failed["execution_id"], max_parallel_steps=1)
    assert resumed["status"] == "Succeeded" and resumed["execution_id"] == failed["execution_id"]
    assert h.jobs.steps_run() == ["A", "B", "B", "D", "C"]
    assert step_record(resumed, "A") == kept and resumed["resumes"] == 1 and resumed["failure_reason"] is None
    first_b, second_b = [name for step, name, *_ in h.jobs.calls if step == "B"]
    assert first_b != second_b


def test_resume_treats_a_step_cut_off_mid_run_as_not_done(h):
    record = h.run(four_steps(), execution_id="cut")
    path = h.home.runs / "cut" / "execution.json"
    crashed = {**record, "status": "Executing", "ended": None,
               "steps": [{**s, "status": "Executing"} if s["name"] == "C" else s for s in record["steps"]]}
    path.write_text(json.dumps(crashed))
    resumed = h.resume("cut")
    assert resumed["status"] == "Succeeded" and h.jobs.steps_run()[4:] == ["C"]


def test_a_succeeded_execution_cannot_be_resumed(h):
    record = h.run(four_steps())
    with pytest.raises(RunError, match="succeeded; there is nothing to resume"):
        h.resume(record["execution_id"])


@pytest.mark.parametrize("kwargs, reason", [
    ({"parameters": {"X": 1}}, "keeps its parameters"),
    ({"pipeline_name": "other"}, "belongs to pipeline p, not other"),
])
def test_resume_refuses_changes(h, kwargs, reason):
    h.jobs.failures["A"] = ["AlgorithmError"]
    record = h.run(four_steps())
    with pytest.raises(RunError, match=reason):
        run_pipeline(None, home=h.home, store=h.store, handlers=h.jobs.handlers(), resume=record["execution_id"],
                     **kwargs)


def test_resume_refuses_a_different_definition_and_an_unknown_execution(h):
    h.jobs.failures["A"] = ["AlgorithmError"]
    record = h.run(four_steps())
    with pytest.raises(RunError, match="resumes its recorded definition"):
        h.run(definition(processing("A", "s3://bkt/raw")), resume=record["execution_id"])
    with pytest.raises(RunError, match="no local execution 'nope'"):
        h.resume("nope")


# --- parameters and definition errors (all before anything runs) -----------------------


PARAMETERS = [parameter("Count", "Integer", 1), parameter("Rate", "Float", 0.5), parameter("Name", "String", "a"),
              parameter("Flag", "Boolean", False), parameter("Env", "String", "dev", EnumValues=["dev", "prod"])]


def test_parameter_overrides_are_typed(h):
    record = h.run(definition(processing("A", "s3://bkt/raw"), parameters=PARAMETERS),
                   parameters={"Count": "3", "Rate": 1, "Flag": "true", "Env": "prod"})
    assert record["parameters"] == {"Count": 3, "Rate": 1.0, "Name": "a", "Flag": True, "Env": "prod"}


@pytest.mark.parametrize("overrides, reason", [
    ({"Count": "abc"}, "parameter Count is Integer: 'abc' is not a valid integer"),
    ({"Count": 2.5}, "parameter Count is Integer"),
    ({"Count": True}, "parameter Count is Integer"),
    ({"Rate": "fast"}, "parameter Rate is Float"),
    ({"Name": 3}, "parameter Name is String"),
    ({"Flag": "yes"}, "parameter Flag is Boolean"),
    ({"Env": "staging"}, "parameter Env must be one of dev, prod, got 'staging'"),
    ({"Nope": 1}, "unknown parameter.s. Nope; the pipeline declares: Count, Rate"),
])
def test_bad_parameters_are_refused_before_anything_runs(h, overrides, reason):
    with pytest.raises(RunError, match=reason):
        h.run(definition(processing("A", "s3://bkt/raw"), parameters=PARAMETERS), parameters=overrides)
    assert h.jobs.calls == [] and not h.home.runs.exists()


def test_a_parameter_without_default_must_be_given(h):
    with pytest.raises(RunError, match="parameter Data has no default value"):
        h.run(definition(processing("A", "s3://bkt/raw"), parameters=[parameter("Data", "String")]))


@pytest.mark.parametrize("steps, reason", [
    ([processing("A", output("Ghost"))], "step A refers to unknown step.s.: Ghost"),
    ([processing("A", "s3://x", DependsOn=["Ghost"])], "step A refers to unknown step.s.: Ghost"),
    ([processing("A", output("B")), processing("B", output("A"))], "the steps form a cycle: A -> B -> A"),
    ([processing("A", output("A"))], "the steps form a cycle: A -> A"),
    ([processing("A", "s3://x"), processing("A", "s3://y")], "duplicate step name.s.: A"),
    ([{"Name": "E", "Type": "EMR", "Arguments": {}}], "step E has type 'EMR', which the local runner cannot run"),
    ([{"Name": "E"}], "a step needs a Name and a Type"),
    ([condition("Gate", [], if_steps=[processing("A", output("Gate2"))])], "step A refers to unknown step.s.: Gate2"),
])
def test_definition_errors_are_refused_before_anything_runs(h, steps, reason):
    with pytest.raises(RunError, match=reason):
        h.run(definition(*steps))
    assert h.jobs.calls == [] and not h.home.runs.exists()


def test_a_new_run_needs_json_and_a_fresh_execution_id(h):
    with pytest.raises(RunError, match="not valid JSON"):
        h.run("{not json")
    h.run(definition(processing("A", "s3://bkt/raw")), execution_id="same")
    with pytest.raises(RunError, match="execution same already exists"):
        h.run(definition(processing("A", "s3://bkt/raw")), execution_id="same")


# --- with the real job runner ----------------------------------------------------------

EVALUATE_SCRIPT = b"""
import json, os, pathlib, sys
data, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
auc = 0.9 + len(os.listdir(data)) / 100
(out / "evaluation.json").write_text(json.dumps({"metrics": {"auc": {"value": auc}}}))
print("auc", auc)
"""


def test_a_real_processing_job_feeds_a_quality_gate(tmp_path):
    """The default handlers (pipelines.local.jobs): a subprocess writes the property file the gate reads."""
    home = LocalHome(tmp_path / "home")
    store = LocalStore(home.s3)
    store.put_bytes("s3://bkt/code/abc/evaluate.py", EVALUATE_SCRIPT)
    for i in range(3):
        store.put_bytes(f"s3://bkt/raw/part-{i}.csv", b"1,0\n")

    def s3_input(name, uri, path):
        return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": path, "S3DataType": "S3Prefix",
                                               "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}

    destination = {"Std:Join": {"On": "/", "Values": ["s3://bkt/runs", get("Execution.PipelineExecutionId"), "eval"]}}
    evaluate = {"Name": "Evaluate", "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1}},
        "AppSpecification": {
            "ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluate.py"],
            "ContainerArguments": ["/opt/ml/processing/input/data", "/opt/ml/processing/output/evaluation"]},
        "RoleArn": "arn:aws:iam::123456789012:role/x",
        "ProcessingInputs": [s3_input("data", "s3://bkt/raw", "/opt/ml/processing/input/data"),
                             s3_input("code", "s3://bkt/code/abc/evaluate.py", "/opt/ml/processing/input/code")],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": destination, "LocalPath": "/opt/ml/processing/output/evaluation", "S3UploadMode": "EndOfJob"}}]},
    }, "PropertyFiles": [{"PropertyFileName": "Report", "OutputName": "evaluation", "FilePath": "evaluation.json"}]}
    auc = {"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.Report"), "Path": "metrics.auc.value"}}
    register = {"Name": "Register-RegisterModel", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "grp", "InferenceSpecification": {"Containers": [{"Image": "xgb"}]}}}
    gate = condition("Gate", [{"Type": "GreaterThanOrEqualTo", "LeftValue": auc, "RightValue": get("Parameters.MinAuc")}],
                     if_steps=[register], else_steps=[fail("TooWeak", "weak")])
    record = run_pipeline(definition(evaluate, gate, parameters=[parameter("MinAuc", "Float", 0.9)]),
                          pipeline_name="p", home=home, store=store)
    assert record["status"] == "Succeeded", record["failure_reason"]
    assert step_record(record, "Evaluate")["property_files"] == {"Report": {"metrics": {"auc": {"value": 0.93}}}}
    assert step_record(record, "Evaluate")["response"]["ProcessingJobStatus"] == "Completed"
    assert statuses(record) == {"Evaluate": "Succeeded", "Gate": "Succeeded", "Register-RegisterModel": "Succeeded",
                                "TooWeak": "NotRun"}
    assert "auc 0.93" in (home.runs / record["execution_id"] / "logs" / "Evaluate.log").read_text()


def test_a_job_step_sees_its_own_job_name_and_a_retry_sees_the_new_one(h):
    """Execution.ProcessingJobName / TrainingJobName name the job of the step that reads them."""
    step = processing("Prep")
    step["Arguments"]["Environment"] = {"JOB": get("Execution.ProcessingJobName")}
    step["RetryPolicies"] = [RETRY]
    h.jobs.failures["Prep"] = [TRANSIENT]
    record = h.run(definition(step))
    assert record["status"] == "Succeeded"
    (_, first, first_request, _), (_, second, second_request, _) = h.jobs.calls
    assert first_request["Environment"] == {"JOB": first} and second_request["Environment"] == {"JOB": second}
    assert first != second


def test_a_job_name_variable_outside_its_step_type_is_an_error(h):
    step = processing("Prep")
    step["Arguments"]["Environment"] = {"JOB": get("Execution.TrainingJobName")}
    record = h.run(definition(step))
    assert record["status"] == "Failed" and "unknown execution variable 'TrainingJobName'" in record["failure_reason"]


def test_a_model_from_a_registered_version_serves_its_container_and_a_missing_one_fails_the_step(h):
    from pipelines.local.registry import Registry

    arn = Registry.of(h.home).register({"ModelPackageGroupName": "g", "InferenceSpecification": {"Containers": [
        {"Image": "xgb", "ModelDataUrl": "s3://bkt/model.tar.gz"}]}}, execution_id=None)["ModelPackageArn"]
    model = {"Name": "Make-CreateModel", "Type": "Model",
             "Arguments": {"ExecutionRoleArn": "role", "Containers": [{"ModelPackageName": arn}]}}
    transform = {"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": get("Steps.Make-CreateModel.ModelName"), "TransformOutput": {"S3OutputPath": "s3://bkt/scores"}}}
    record = h.run(definition(model, transform))
    model_name = step_record(record, "Make-CreateModel")["response"]["ModelName"]
    assert h.jobs.calls[0][3].models[model_name]["Containers"] == [
        {"ModelPackageName": arn, "Image": "xgb", "ModelDataUrl": "s3://bkt/model.tar.gz"}]
    model["Arguments"]["Containers"] = [{"ModelPackageName": arn[:-1] + "7"}]
    failed = h.run(definition(model, transform))
    assert failed["status"] == "Failed"
    assert step_record(failed, "Make-CreateModel")["failure_reason"] == (
        f"ValidationException: no model package g/7 in {h.home.registry}")
