"""The container contract: Processing, Training and Transform jobs run as subprocesses."""

import io
import json
import tarfile
from pathlib import Path

import pytest

from pipelines.local import serving
from pipelines.local.container import namespace_unavailable_reason
from pipelines.local.jobs import JobContext, JobFailed, run_processing, run_training, run_transform
from pipelines.local.storage import LocalStore

SCRIPTS = Path(__file__).parent / "scripts"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
ROLE = "arn:aws:iam::123456789012:role/x"
needs_namespace = pytest.mark.skipif(namespace_unavailable_reason() is not None,
                                     reason=f"no mount namespace: {namespace_unavailable_reason()}")
ISOLATIONS = [pytest.param("namespace", marks=needs_namespace), "paths"]


def make_ctx(tmp_path: Path, isolation: str = "auto", job: str = "job", **kwargs) -> JobContext:
    (tmp_path / job).mkdir()
    return JobContext(store=LocalStore(tmp_path / "s3"), work_dir=tmp_path / job,
                      log_path=tmp_path / f"{job}.log", isolation=isolation, **kwargs)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


# --- Processing ----------------------------------------------------------------

PROCESS_ARGS = ["--input", "/opt/ml/processing/input/data", "--output", "/opt/ml/processing/output/report",
                "--config", "/opt/ml/config/resourceconfig.json", "--message-file", "/opt/ml/output/message"]


def processing_request(ctx, script, args, *, count=1, distribution="FullyReplicated", image=SKLEARN):
    ctx.store.put_file(f"s3://bkt/code/{script}", SCRIPTS / script)

    def s3_input(name, uri, path, distribution="FullyReplicated"):
        return {"InputName": name, "AppManaged": False,
                "S3Input": {"S3Uri": uri, "LocalPath": path, "S3DataType": "S3Prefix", "S3InputMode": "File",
                            "S3DataDistributionType": distribution, "S3CompressionType": "None"}}

    return {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": count,
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": image, "ContainerArguments": args,
                             "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"]},
        "RoleArn": ROLE,
        "Environment": {"GREETING": "hello"},
        "ProcessingInputs": [s3_input("data", "s3://bkt/raw", "/opt/ml/processing/input/data", distribution),
                             s3_input("code", f"s3://bkt/code/{script}", "/opt/ml/processing/input/code")],
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": name, "AppManaged": False,
             "S3Output": {"S3Uri": f"s3://bkt/out/{name}", "LocalPath": f"/opt/ml/processing/output/{name}",
                          "S3UploadMode": "EndOfJob"}} for name in ("report", "result")]},
    }


def put_raw(ctx, count):
    for i in range(count):
        ctx.store.put_bytes(f"s3://bkt/raw/f{i}.csv", b"1,2\n")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_processing_stages_inputs_runs_and_uploads_outputs(tmp_path, isolation):
    ctx = make_ctx(tmp_path, isolation)
    put_raw(ctx, 3)
    response = run_processing("Prep-1", processing_request(ctx, "process.py", PROCESS_ARGS + ["--message", "done"]), ctx)
    assert response["ProcessingJobStatus"] == "Completed"
    assert response["ProcessingJobArn"] == "arn:aws:sagemaker:us-east-1:000000000000:processing-job/prep-1"
    assert response["ExitMessage"] == "done"
    assert response["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://bkt/out/report"
    report = json.loads(ctx.store.get_bytes("s3://bkt/out/report/algo-1.json"))
    assert report["files"] == ["f0.csv", "f1.csv", "f2.csv"]
    assert report["greeting"] == "hello"
    assert report["hosts"] == ["algo-1"]
    assert "processed 3 files on algo-1" in ctx.log_path.read_text()
    assert ("isolation=paths" in ctx.log_path.read_text()) == (isolation == "paths")
    json.dumps(response)


def test_failing_processing_reports_its_message_and_uploads_nothing(tmp_path):
    ctx = make_ctx(tmp_path)
    put_raw(ctx, 1)
    request = processing_request(ctx, "process.py", PROCESS_ARGS + ["--message", "bad input", "--exit-code", "1"])
    with pytest.raises(JobFailed) as failure:
        run_processing("Prep", request, ctx)
    assert failure.value.error_type == "AlgorithmError"
    assert failure.value.reason == "AlgorithmError: bad input"
    assert failure.value.response["ProcessingJobStatus"] == "Failed"
    assert failure.value.response["FailureReason"] == "AlgorithmError: bad input"
    assert failure.value.response["ExitMessage"] == "bad input"
    assert ctx.store.list("s3://bkt/out/") == []


def test_failure_without_message_file_quotes_the_log(tmp_path):
    ctx = make_ctx(tmp_path)
    put_raw(ctx, 2)
    with pytest.raises(JobFailed) as failure:
        run_processing("Prep", processing_request(ctx, "process.py", PROCESS_ARGS + ["--exit-code", "4"]), ctx)
    assert failure.value.reason.startswith("AlgorithmError: exit code 4")
    assert "processed 2 files" in failure.value.reason


@needs_namespace
def test_hard_coded_opt_ml_paths_run_unchanged_in_a_namespace(tmp_path):
    ctx = make_ctx(tmp_path, "namespace")
    ctx.store.put_bytes("s3://bkt/raw/numbers.txt", b"1 2 3 4")
    response = run_processing("Sum", processing_request(ctx, "hardcoded.py", []), ctx)
    assert json.loads(ctx.store.get_bytes("s3://bkt/out/result/sum.json")) == {"job": "Sum", "sum": 10}
    assert response["ExitMessage"] == "summed"


@pytest.mark.parametrize("distribution, expected", [
    ("ShardedByS3Key", {"algo-1": ["f0.csv", "f2.csv"], "algo-2": ["f1.csv", "f3.csv"]}),
    ("FullyReplicated", {"algo-1": ["f0.csv", "f1.csv", "f2.csv", "f3.csv"],
                         "algo-2": ["f0.csv", "f1.csv", "f2.csv", "f3.csv"]}),
])
def test_instances_split_or_replicate_inputs(tmp_path, distribution, expected):
    ctx = make_ctx(tmp_path)
    put_raw(ctx, 4)
    run_processing("Prep", processing_request(ctx, "process.py", PROCESS_ARGS, count=2, distribution=distribution), ctx)
    reports = {h: json.loads(ctx.store.get_bytes(f"s3://bkt/out/report/{h}.json")) for h in expected}
    assert {h: r["files"] for h, r in reports.items()} == expected
    assert all(r["hosts"] == ["algo-1", "algo-2"] for r in reports.values())
    assert "[algo-2] processed" in ctx.log_path.read_text()


def test_unsupported_image_is_a_client_error(tmp_path):
    ctx = make_ctx(tmp_path)
    put_raw(ctx, 1)
    request = processing_request(ctx, "process.py", PROCESS_ARGS, image="123.dkr.ecr.us-east-1.amazonaws.com/mine:1")
    with pytest.raises(JobFailed) as failure:
        run_processing("Prep", request, ctx)
    assert failure.value.error_type == "ClientError"
    assert "mine:1" in failure.value.reason and "sagemaker-scikit-learn" in failure.value.reason


def test_missing_input_is_a_client_error(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(JobFailed, match="No S3 objects found under S3 URL s3://bkt/raw") as failure:
        run_processing("Prep", processing_request(ctx, "process.py", PROCESS_ARGS), ctx)
    assert failure.value.error_type == "ClientError"


# --- Training ------------------------------------------------------------------

STATIC_HPS = {
    "eta": "0.25", "flag": "true", "label": '"Revenue"',
    "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"',
    "sagemaker_container_log_level": "20",
}


def training_request(ctx, *, hps=None, count=1, distribution="FullyReplicated", max_runtime=600):
    ctx.store.put_bytes("s3://bkt/code/sourcedir.tar.gz", tar_gz({"train.py": (SCRIPTS / "train.py").read_bytes()}))
    for key in ("train/a.csv", "train/b.csv", "validation/v.csv"):
        ctx.store.put_bytes(f"s3://bkt/data/{key}", b"1,2\n")
    return {
        "AlgorithmSpecification": {
            "TrainingImage": XGBOOST, "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:score", "Regex": "validation:score=([-+0-9.eE]+);"}]},
        "HyperParameters": {**STATIC_HPS, **(hps or {})},
        "InputDataConfig": [
            {"ChannelName": name, "ContentType": "text/csv",
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bkt/data/{name}",
                                             "S3DataDistributionType": distribution}}}
            for name in ("train", "validation")],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/models"},
        "ResourceConfig": {"InstanceCount": count, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        "RoleArn": ROLE,
    }


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_training_follows_the_toolkit_contract(tmp_path, isolation):
    ctx = make_ctx(tmp_path, isolation)
    request = training_request(ctx)
    response = run_training("train-1", request, ctx)
    model_uri = "s3://bkt/models/train-1/output/model.tar.gz"
    assert response["TrainingJobStatus"] == "Completed"
    assert response["TrainingJobArn"] == "arn:aws:sagemaker:us-east-1:000000000000:training-job/train-1"
    assert response["ModelArtifacts"] == {"S3ModelArtifacts": model_uri}
    assert response["HyperParameters"] == request["HyperParameters"]
    assert [(m["MetricName"], m["Value"]) for m in response["FinalMetricDataList"]] == [("validation:score", 0.25)]
    assert untar(ctx.store.get_bytes("s3://bkt/models/train-1/output/output.tar.gz")) == {"extra.txt": b"extra"}

    report = json.loads(untar(ctx.store.get_bytes(model_uri))["report-algo-1.json"])
    assert report["argv"] == ["--eta", "0.25", "--flag", "True", "--label", "Revenue"]
    assert report["hyperparameters"] == request["HyperParameters"]
    assert report["channels"] == {"train": ["a.csv", "b.csv"], "validation": ["v.csv"]}
    assert report["resourceconfig"]["current_host"] == "algo-1"
    assert report["resourceconfig"]["network_interface_name"] == "eth0"
    assert report["inputdataconfig"]["train"]["ContentType"] == "text/csv"
    opt_ml = "/opt/ml" if isolation == "namespace" else str(ctx.work_dir / "algo-1")
    assert report["cwd"] == f"{opt_ml}/code"
    env = report["env"]
    assert env["SM_MODEL_DIR"] == f"{opt_ml}/model"
    assert env["SM_CHANNEL_TRAIN"] == f"{opt_ml}/input/data/train"
    assert env["SM_OUTPUT_DATA_DIR"] == f"{opt_ml}/output/data"
    assert json.loads(env["SM_HPS"]) == {"eta": 0.25, "flag": True, "label": "Revenue"}
    assert env["SM_HP_ETA"] == "0.25" and env["SM_HP_LABEL"] == "Revenue"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert env["SM_NUM_GPUS"] == "0" and int(env["SM_NUM_CPUS"]) >= 1
    assert env["SM_MODULE_DIR"] == "s3://bkt/code/sourcedir.tar.gz"
    assert json.loads(env["SM_USER_ARGS"]) == report["argv"]
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == "train-1"
    assert env["SM_LOG_LEVEL"] == "20" and env["TRAINING_JOB_NAME"] == "train-1"
    assert json.loads(env["SM_RESOURCE_CONFIG"])["hosts"] == ["algo-1"]
    assert "train" in json.loads(env["SM_INPUT_DATA_CONFIG"])
    json.dumps(response)


# The SDK's model repack step: a launcher without a shebang on its first line, which the toolkit runs by /bin/sh.
LAUNCHER = b"""
#!/bin/bash

python -c 'import json, os, sys; json.dump({"args": sys.argv[2:], "cwd": os.getcwd()}, open(sys.argv[1], "w"))' \\
  "${SM_MODEL_DIR}/ran.json" "${SM_HP_MODEL_ARCHIVE}" "$@"
"""


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_shell_entry_point_is_run_as_a_command_as_the_toolkit_does(tmp_path, isolation):
    ctx = make_ctx(tmp_path, isolation)
    request = training_request(ctx, hps={"sagemaker_program": '"_repack_script_launcher.sh"',
                                         "model_archive": '"s3://bkt/m/model.tar.gz"', "odd": '"a b;c"'})
    ctx.store.put_bytes("s3://bkt/code/sourcedir.tar.gz", tar_gz({"_repack_script_launcher.sh": LAUNCHER}))
    response = run_training("repack", request, ctx)
    ran = json.loads(untar(ctx.store.get_bytes(response["ModelArtifacts"]["S3ModelArtifacts"]))["ran.json"])
    assert ran["args"][0] == "s3://bkt/m/model.tar.gz" and ran["args"][-2:] == ["--odd", "a b;c"]
    assert ran["cwd"] == "/opt/ml/code" if isolation == "namespace" else ran["cwd"].endswith("/code")


def test_failure_file_becomes_the_failure_reason_and_nothing_is_uploaded(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(JobFailed) as failure:
        run_training("train-1", training_request(ctx, hps={"mode": '"failure-file"'}), ctx)
    assert failure.value.error_type == "AlgorithmError"
    assert failure.value.response["FailureReason"] == "AlgorithmError: bad training data"
    assert failure.value.response["TrainingJobStatus"] == "Failed"
    assert ctx.store.list("s3://bkt/models/") == []


def test_a_killed_job_is_an_internal_retryable_error(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(JobFailed) as failure:
        run_training("train-1", training_request(ctx, hps={"mode": '"kill"'}), ctx)
    assert failure.value.error_type == "SageMaker.JOB_INTERNAL_ERROR"
    assert "SIGKILL" in failure.value.reason


def test_max_runtime_stops_the_job(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(JobFailed, match="MaxRuntimeExceeded") as stopped:
        run_training("train-1", training_request(ctx, hps={"sleep": "30"}, max_runtime=1), ctx)
    # As SageMaker reports a job past its StoppingCondition: Stopped, with the secondary status saying why
    assert stopped.value.response["TrainingJobStatus"] == "Stopped"
    assert stopped.value.response["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_each_training_host_has_its_own_identity_and_shard(tmp_path):
    ctx = make_ctx(tmp_path)
    run_training("train-2", training_request(ctx, count=2, distribution="ShardedByS3Key"), ctx)
    reports = {h: json.loads((ctx.work_dir / h / "model" / f"report-{h}.json").read_text())
               for h in ("algo-1", "algo-2")}
    assert {h: r["env"]["SM_CURRENT_HOST"] for h, r in reports.items()} == {"algo-1": "algo-1", "algo-2": "algo-2"}
    assert {h: r["channels"]["train"] for h, r in reports.items()} == {"algo-1": ["a.csv"], "algo-2": ["b.csv"]}
    log = ctx.log_path.read_text()
    assert "[algo-1] validation:score=0.25;" in log and "[algo-2] validation:score=0.25;" in log
    model = untar(ctx.store.get_bytes("s3://bkt/models/train-2/output/model.tar.gz"))
    assert list(model) == ["report-algo-1.json"]


@needs_namespace
def test_hosts_of_a_job_reach_each_other_by_name_at_addresses_of_their_own(tmp_path):
    ctx = make_ctx(tmp_path, "namespace")
    run_training("train-3", training_request(ctx, hps={"mode": '"network"'}, count=3), ctx)
    heard = [line for line in ctx.log_path.read_text().splitlines() if "heard" in line]
    assert len(heard) == 1 and "heard ['algo-2', 'algo-3'] at 127." in heard[0]
    assert not heard[0].endswith(" at 127.0.0.1")  # not the machine's own address: trials at once never clash


def test_training_without_a_script_needs_the_xgboost_image(tmp_path):
    ctx = make_ctx(tmp_path)
    request = training_request(ctx)
    del request["HyperParameters"]["sagemaker_program"]
    request["AlgorithmSpecification"]["TrainingImage"] = SKLEARN
    with pytest.raises(JobFailed, match="only the built-in XGBoost algorithm") as failure:
        run_training("train-1", request, ctx)
    assert failure.value.error_type == "ClientError"


# --- Transform -----------------------------------------------------------------


def model_request(ctx):
    ctx.store.put_bytes("s3://bkt/models/m/model.tar.gz", tar_gz({
        "model.json": json.dumps({"weights": [1.0, 10.0], "bias": 0.5}).encode(),
        "code/inference.py": (SCRIPTS / "inference.py").read_bytes()}))
    return {"ModelName": "scorer", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
        "Image": XGBOOST, "ModelDataUrl": "s3://bkt/models/m/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}}}


def transform_request(strategy="MultiRecord"):
    return {
        "ModelName": "scorer", "BatchStrategy": strategy, "MaxPayloadInMB": 6,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/batch/in"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bkt/batch/out", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


@pytest.mark.parametrize("strategy, batches", [("MultiRecord", ["batch of 3 rows", "batch of 2 rows"]),
                                               ("SingleRecord", ["batch of 1 rows"] * 5)])
def test_transform_scores_every_input_object(tmp_path, strategy, batches):
    ctx = make_ctx(tmp_path)
    ctx.models["scorer"] = model_request(ctx)
    ctx.store.put_bytes("s3://bkt/batch/in/a.csv", b"1,0\n0,1\n2,2\n")
    ctx.store.put_bytes("s3://bkt/batch/in/b.csv", b"1,1\n\n3,0\n")
    response = run_transform("score-1", transform_request(strategy), ctx)
    assert response["TransformJobStatus"] == "Completed"
    assert response["TransformJobArn"].endswith(":transform-job/score-1")
    assert ctx.store.list("s3://bkt/batch/out/") == ["s3://bkt/batch/out/a.csv.out", "s3://bkt/batch/out/b.csv.out"]
    assert ctx.store.get_bytes("s3://bkt/batch/out/a.csv.out") == b"1.5\n10.5\n22.5\n"
    assert ctx.store.get_bytes("s3://bkt/batch/out/b.csv.out") == b"11.5\n3.5\n"
    assert [line for line in ctx.log_path.read_text().splitlines() if line.startswith("batch")] == batches


def test_transform_of_an_unknown_model_is_a_client_error(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(JobFailed, match="scorer") as failure:
        run_transform("score-1", transform_request(), ctx)
    assert failure.value.error_type == "ClientError"


def test_payloads_respect_split_strategy_and_size():
    data = b"aa\nbb\n\ncc\r\n"

    def cut(*args):
        return list(serving.payloads(io.BytesIO(data), *args))
    assert cut("Line", "MultiRecord", 0) == [b"aa\nbb\ncc"]
    assert cut("Line", "MultiRecord", 5) == [b"aa\nbb", b"cc"]
    assert cut("Line", "SingleRecord", 0) == [b"aa", b"bb", b"cc"]
    assert cut("None", "MultiRecord", 0) == [data]
    with pytest.raises(ValueError, match="MaxPayloadInMB"):
        cut("None", "MultiRecord", 4)
    with pytest.raises(ValueError, match="a record is 2 bytes, more than MaxPayloadInMB"):
        cut("Line", "MultiRecord", 1)


def test_payloads_read_the_object_as_they_go():
    """A large object is cut while it is read: the first body comes before the reader reaches the end."""
    class Lines(io.BytesIO):
        def __iter__(self):
            for i in range(1_000_000):
                self.last = i
                yield b"%d\n" % i

    stream = Lines()
    first = next(serving.payloads(stream, "Line", "MultiRecord", 64))
    assert first.split(b"\n")[0] == b"0" and len(first) <= 64 and stream.last < 100


def test_default_handlers_decode_predict_and_encode(tmp_path):
    (tmp_path / "program.py").write_text("def model_fn(model_dir):\n    return None\n")
    handlers = serving.load_handlers(tmp_path, tmp_path, "program.py")

    class Doubler:
        def predict(self, rows):
            return rows.sum(axis=1) * 2

    assert serving.invoke(handlers, Doubler(), b"1,2\n3,4\n", "text/csv", "text/csv") == (b"6.0\n14.0\n", "text/csv")
    body, content_type = serving.invoke(handlers, Doubler(), b"[[1, 1]]", "application/json", "application/json")
    assert (json.loads(body), content_type) == ([4], "application/json")


def test_jobs_wait_passively_for_cores_unless_the_user_chose(monkeypatch):
    from pipelines.local.container import host_environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert host_environment()["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert host_environment()["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("change, message", [
    ({"max_depth": "-1"}, "Hyperparameter max_depth: value -1 not in range [0, inf]"),
    ({"objective": "reg:nonsense"}, "Hyperparameter objective: value reg:nonsense not in range"),
    ({"num_round": "2.5"}, "Hyperparameter num_round: '2.5' is not an integer"),
    ({"colour": "blue"}, "Extraneous hyperparameter found: colour"),
    ({"_kfold": "5"}, "k-fold cross-validation is not emulated locally"),
    ({"eval_metric": "f1"}, "metric(s) f1 of the built-in algorithm are computed by the container"),
])
def test_the_built_in_algorithm_validates_its_hyperparameters(tmp_path, change, message):
    ctx = make_ctx(tmp_path)
    request = training_request(ctx, hps={"num_round": "3", "objective": "reg:squarederror"})
    request["HyperParameters"] = {"num_round": "3", "objective": "reg:squarederror", **change}
    with pytest.raises(JobFailed) as failure:
        run_training("train", request, ctx)
    assert failure.value.error_type == "AlgorithmError" and message in failure.value.reason


def test_the_built_in_algorithm_on_several_instances_is_refused(tmp_path):
    ctx = make_ctx(tmp_path)
    request = training_request(ctx, count=2)
    request["HyperParameters"] = {"num_round": "3"}
    with pytest.raises(JobFailed, match="on 2 instances .* is not emulated locally") as failure:
        run_training("train", request, ctx)
    assert failure.value.error_type == "ClientError"


@pytest.mark.parametrize("content_type, body", [
    ("text/csv", b"1,0.5,2\n0,0.1,1\n1,0.7,3\n0,0.2,0\n"),
    ("text/libsvm", b"1 1:0.5 2:2\n0 1:0.1 2:1\n1 1:0.7 2:3\n0 1:0.2\n"),
])
def test_the_built_in_algorithm_reads_its_channels_and_writes_xgboost_model(tmp_path, content_type, body):
    ctx = make_ctx(tmp_path)
    request = training_request(ctx)
    request["AlgorithmSpecification"]["TrainingImage"] = XGBOOST  # 3.0-5: Booster.save_model's format
    request["HyperParameters"] = {"num_round": "4", "objective": "binary:logistic", "eval_metric": "logloss"}
    for channel in request["InputDataConfig"]:
        channel["ContentType"] = content_type
        for uri in ctx.store.list(channel["DataSource"]["S3DataSource"]["S3Uri"]):
            ctx.store.put_bytes(uri, body)
    response = run_training("train", request, ctx)
    metrics = {m["MetricName"]: m["Value"] for m in response["FinalMetricDataList"]}
    assert set(metrics) == {"validation:logloss"} and 0 < metrics["validation:logloss"] < 1
    model = untar(ctx.store.get_bytes(response["ModelArtifacts"]["S3ModelArtifacts"]))
    assert list(model) == ["xgboost-model"] and not model["xgboost-model"].startswith(b"\x80")  # not a pickle
    assert "[3]\ttrain-logloss:" in ctx.log_path.read_text()


@pytest.mark.parametrize("saved_as", ["pickle", "save_model"])
def test_the_built_in_algorithm_serves_its_model_with_its_contract(tmp_path, saved_as):
    import pickle

    import numpy as np
    import xgboost

    features = np.array([[0.1, 1.0], [0.9, 2.0], [0.2, 0.5], [0.8, 3.0]] * 10)
    data = xgboost.DMatrix(features, label=[0, 1, 0, 1] * 10)
    booster = xgboost.train({"objective": "binary:logistic"}, data, 3)
    (tmp_path / "model").mkdir()
    if saved_as == "pickle":
        (tmp_path / "model" / "xgboost-model").write_bytes(pickle.dumps(booster))
    else:
        booster.save_model(str(tmp_path / "model" / "xgboost-model"))
    handlers = serving.load_handlers(tmp_path / "model", tmp_path / "code", None)
    model = handlers.load_model()
    csv, kind = serving.invoke(handlers, model, b"0.1,1.0\n0.9,2.0\n", "text/csv", "text/csv")
    scores = [float(line) for line in csv.decode().split()]
    assert kind == "text/csv" and len(scores) == 2 and scores[0] < 0.5 < scores[1]
    as_json, _ = serving.invoke(handlers, model, b"0:0.1 1:1.0\n0:0.9 1:2.0\n", "text/libsvm", "application/json")
    assert [round(p["score"], 5) for p in json.loads(as_json)["predictions"]] == [round(s, 5) for s in scores]
    with pytest.raises(ValueError, match="Content-type application/x-recordio-protobuf is not supported"):
        serving.invoke(handlers, model, b"x", "application/x-recordio-protobuf", "text/csv")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_link_out_of_opt_ml_in_an_output_fails_the_job_and_is_not_followed(tmp_path, isolation):
    """The runner reads a job's outputs from this machine's side: a link to a file of the host (which the
    job itself cannot read) must not make it upload that file."""
    secret = tmp_path / "secret.txt"
    secret.write_text("host-only secret\n")
    ctx = make_ctx(tmp_path, isolation)
    put_raw(ctx, 1)
    with pytest.raises(JobFailed, match=r"left a symbolic link out of /opt/ml in an output, which is not uploaded: "
                                        r"/opt/ml/processing/output/report/leak"):
        run_processing("Leak", processing_request(ctx, "link_out.py", [str(secret), "/opt/ml/processing/output/report"]),
                       ctx)
    assert not any(b"host-only secret" in ctx.store.get_bytes(uri) for uri in ctx.store.list("s3://bkt/"))


@needs_namespace
def test_a_scratch_size_that_is_no_size_is_refused_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINES_JOB_SCRATCH", "lots")
    ctx = make_ctx(tmp_path, "namespace")
    put_raw(ctx, 1)
    with pytest.raises(JobFailed, match=r"ClientError: PIPELINES_JOB_SCRATCH='lots' is not a size"):
        run_processing("Prep", processing_request(ctx, "process.py", PROCESS_ARGS), ctx)
    assert [p.name for p in ctx.work_dir.iterdir()] == ["algo-1"]  # no scratch folder left behind


def test_an_entry_point_outside_the_source_directory_is_refused_and_this_machine_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("mode must stay\n")
    victim.chmod(0o600)
    ctx = make_ctx(tmp_path, "paths")
    request = training_request(ctx, hps={"sagemaker_program": f'"{"../" * 12}{str(victim).lstrip("/")}"'})
    with pytest.raises(JobFailed, match="is not in the source directory"):
        run_training("escape", request, ctx)
    assert victim.stat().st_mode & 0o777 == 0o600
