"""One model trained across the hosts of a training job (the local runner's hosts reach each other by
name), as the SageMaker XGBoost container sets it up: tracker on the first host, only it writes the model."""
import io
import json
import tarfile
from pathlib import Path

import pytest

from examples.purchase_intent import shoppers_data as data
from pipelines.bundles import pack
from pipelines.local.container import namespace_unavailable_reason
from pipelines.local.jobs import JobContext, JobFailed, run_training
from pipelines.local.storage import LocalStore
from test_preprocess import run_preprocess

ROOT = Path(__file__).resolve().parents[1]
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
pytestmark = pytest.mark.skipif(namespace_unavailable_reason() is not None,
                                reason=f"hosts reach each other by name in a mount namespace only: "
                                       f"{namespace_unavailable_reason()}")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Preprocess's parts (4 per split) and schema, and train.py's source, in a local S3."""
    tmp = tmp_path_factory.mktemp("distributed")
    out = run_preprocess(tmp, data.generate(3000, seed=4))
    s3 = LocalStore(tmp / "s3")
    for name in ("train", "validation", "schema"):
        for path in sorted((out / name).iterdir()):
            s3.put_file(f"s3://bkt/prep/{name}/{path.name}", path)
    s3.put_bytes("s3://bkt/code/sourcedir.tar.gz", pack(ROOT / "training_scripts"))
    return s3


def train_on(store, tmp_path, hosts, **hyperparameters):
    (tmp_path / "job").mkdir(parents=True)
    ctx = JobContext(store=store, work_dir=tmp_path / "job", log_path=tmp_path / "job.log", isolation="namespace",
                     cpus=1)
    hps = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"',
           "num_round": "30", **{k: json.dumps(v) for k, v in hyperparameters.items()}}
    channels = [{"ChannelName": name, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://bkt/prep/{name}",
        "S3DataDistributionType": "FullyReplicated" if name == "schema" else "ShardedByS3Key"}}}
        for name in ("train", "validation", "schema")]
    request = {"AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
               "HyperParameters": hps, "InputDataConfig": channels, "RoleArn": "arn:aws:iam::1:role/r",
               "OutputDataConfig": {"S3OutputPath": f"s3://bkt/models-{hosts}"},
               "ResourceConfig": {"InstanceCount": hosts, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 5},
               "StoppingCondition": {"MaxRuntimeInSeconds": 600}}
    response = run_training(f"train-{hosts}", request, ctx)
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(response["ModelArtifacts"]["S3ModelArtifacts"]))) as tar:
        metadata = json.load(tar.extractfile("metadata.json"))
    return metadata, ctx.log_path.read_text()


def test_two_hosts_train_one_model_as_good_as_one_host(store, tmp_path):
    alone, _ = train_on(store, tmp_path / "one", 1)
    together, log = train_on(store, tmp_path / "two", 2)
    assert together["hosts"] == 2 and alone["hosts"] == 1
    assert together["rows"] == alone["rows"]  # every row trained on once, wherever it was
    assert together["folds"] == alone["folds"] == 5
    auc = lambda meta: meta["metrics"]["validation"]["auc"]  # noqa: E731 (out-of-fold, all rows)
    assert abs(auc(together) - auc(alone)) < 0.01
    assert "[algo-2]" in log and "Task 1 got rank 1" in log  # both hosts joined one collective
    assert "[algo-2] validation:auc" not in log  # the first host reports and writes the model


def test_a_host_without_data_fails_the_job_with_a_reason(store, tmp_path):
    with pytest.raises(JobFailed, match="algo-5 got no rows of the train channel.*TrainingInstanceCount"):
        train_on(store, tmp_path, 5, folds=1)
