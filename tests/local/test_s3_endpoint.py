"""Jobs reach the local store over S3: a loopback endpoint that only the job's own key pair can use."""
import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipelines.local import s3_endpoint
from pipelines.local.jobs import JobContext, run_processing
from pipelines.local.storage import LocalStore

SCRIPTS = Path(__file__).parent / "scripts"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"


@pytest.fixture
def endpoint(tmp_path):
    store = LocalStore(tmp_path / "s3")
    with s3_endpoint.serve(store, "us-east-1") as running:
        yield store, running


def client(env: dict, **overrides):
    keys = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            **overrides}
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}), **keys)


def test_boto3_reads_writes_lists_and_deletes_through_the_endpoint(endpoint, tmp_path):
    store, running = endpoint
    s3 = client(running.environment())
    store.put_bytes("s3://bkt/data/a.csv", b"1,2\n")
    s3.put_object(Bucket="bkt", Key="data/b.csv", Body=b"3,4\n")
    assert store.get_bytes("s3://bkt/data/b.csv") == b"3,4\n"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt", Prefix="data/")["Contents"]] == ["data/a.csv", "data/b.csv"]
    listing = s3.list_objects_v2(Bucket="bkt", Delimiter="/")
    assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["data/"]
    big = bytes(range(256)) * 40_000  # 10 MB: upload_file goes multipart, download_file reads ranges
    (tmp_path / "big.bin").write_bytes(big)
    s3.upload_file(str(tmp_path / "big.bin"), "bkt", "big/big.bin")
    assert store.get_bytes("s3://bkt/big/big.bin") == big
    s3.download_file("bkt", "big/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big
    boto3.resource("s3", endpoint_url=running.url, region_name="us-east-1",
                   aws_access_key_id=running.access_key, aws_secret_access_key=running.secret_key
                   ).Bucket("bkt").download_file("data/a.csv", str(tmp_path / "a.csv"))
    assert (tmp_path / "a.csv").read_bytes() == b"1,2\n"
    s3.delete_object(Bucket="bkt", Key="data/a.csv")
    assert not store.exists("s3://bkt/data/a.csv")
    with pytest.raises(ClientError, match="NoSuchKey|404"):
        s3.get_object(Bucket="bkt", Key="data/a.csv")


def test_other_keys_are_refused(endpoint):
    store, running = endpoint
    store.put_bytes("s3://bkt/secret.txt", b"x")
    stranger = client(running.environment(), aws_access_key_id="AKIAHOSTKEY")
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        stranger.get_object(Bucket="bkt", Key="secret.txt")


@pytest.mark.parametrize("isolated", [False, True])
def test_a_job_gets_the_endpoint_and_its_keys_only_without_network_isolation(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOSTKEY")  # the caller's: never a job's
    monkeypatch.setenv("AWS_PROFILE", "host-profile")
    store = LocalStore(tmp_path / "s3")
    store.put_bytes("s3://bkt/raw/r.csv", b"1\n")
    store.put_file("s3://bkt/code/s3_probe.py", SCRIPTS / "s3_probe.py")
    with s3_endpoint.job_access(store, "us-east-1") as access:
        ctx = JobContext(store=store, work_dir=tmp_path / "job", log_path=tmp_path / "job.log", s3_access=access)
        request = {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
            "AppSpecification": {"ImageUri": SKLEARN, "ContainerArguments": ["/opt/ml/processing/out"],
                                 "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/s3_probe.py"]},
            "ProcessingInputs": [{"InputName": "code", "S3Input": {
                "S3Uri": "s3://bkt/code/s3_probe.py", "LocalPath": "/opt/ml/processing/input/code",
                "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": "s3://bkt/out", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
            "NetworkConfig": {"EnableNetworkIsolation": isolated},
            "RoleArn": "arn:aws:iam::123456789012:role/x",
        }
        run_processing("probe", request, ctx)
    report = json.loads(store.get_bytes("s3://bkt/out/report.json"))
    assert report["AWS_PROFILE"] is None and report["AWS_ACCESS_KEY_ID"] != "AKIAHOSTKEY"
    if isolated:
        assert report == {"AWS_ENDPOINT_URL_S3": None, "AWS_ACCESS_KEY_ID": None, "AWS_PROFILE": None}
    else:
        assert report["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")
        assert report["listed"] == ["raw/r.csv"]
        assert store.get_bytes("s3://bkt/from-job/hello.txt") == b"written by the job"


@pytest.mark.parametrize("endpoint_url, expected", [
    ("http://127.0.0.1:5123", "http://127.0.0.1:5123"),  # moto or MinIO: jobs use it too
    (None, None),  # AWS's own S3: jobs get no endpoint and no credentials
])
def test_a_store_on_another_s3_is_handed_to_jobs_as_it_is(endpoint_url, expected):
    from pipelines.local.storage import Boto3Store

    store = Boto3Store(boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url,
                                    aws_access_key_id="x", aws_secret_access_key="y"))
    with s3_endpoint.job_access(store, "us-east-1") as access:
        assert access.get("AWS_ENDPOINT_URL_S3") == expected
        assert access.get("AWS_ACCESS_KEY_ID") in (None, "local-job")
