"""Secrets and hostile input: no AWS credential of the caller reaches a compiled definition, an
execution's record or a job's environment; paths and archive members that would leave the run's
directories are refused with a clear error, and nothing is written outside.

Elsewhere: `upsert` refuses a role that is not an IAM role ARN before any call (tests/test_cloud.py,
test_upsert_refuses_a_bad_role_before_any_call); the local server answers malformed and oversized
payloads with a 4xx and keeps serving (tests/test_local_serving.py); the local store refuses keys
with `..` (tests/local/test_storage.py, test_local_store_refuses_path_escape).
"""
from __future__ import annotations

import copy
import functools
import io
import json
import re
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import EXAMPLE_DEF, example, example_config, run_cli, steps_of

from pipelines.compiler import compile_pipeline
from examples.purchase_intent.shoppers_data import generate, write_csv
from pipelines.local import LocalHome, RunError, open_store, run_pipeline
from pipelines.local import endpoint as local_endpoint
from pipelines.local.endpoint import LocalEndpointError

from fixtures.steps import fixture_state

from .support import REGION, compile_module, local_store

pytestmark = pytest.mark.reliability

CREDENTIALS = {  # marker values: wherever one shows up, a credential leaked
    "AWS_ACCESS_KEY_ID": "AKIARELIABILITYMARK7",
    "AWS_SECRET_ACCESS_KEY": "reliability-secret-access-key-marker",
    "AWS_SESSION_TOKEN": "reliability-session-token-marker",
}
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def leaks(named: dict[str, bytes]) -> list[str]:
    """The names whose contents hold any of the credential markers."""
    markers = [value.encode() for value in CREDENTIALS.values()]
    return [name for name, data in named.items() if any(marker in data for marker in markers)]


# --- credentials in the environment --------------------------------------------------------------


@pytest.fixture(scope="module")
def with_credentials(tmp_path_factory) -> SimpleNamespace:
    """With the markers as this process's AWS credentials: a compile, a full local run of the
    purchase-intent pipeline (report and model card included) and a job that records its environment."""
    root = tmp_path_factory.mktemp("credentials")
    home = root / "home"
    state_uri, _ = fixture_state(home)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in CREDENTIALS.items():
            patch.setenv(key, value)
        cfg = example_config()
        compiled = compile_pipeline(example().definition(cfg), cfg)
        data = write_csv(generate(1000, seed=9), root / "sessions.csv")
        _, full = run_cli("run", "--local", "--definition", EXAMPLE_DEF, "--no-tuning", "--region", REGION, "--home", home,
                          "--input-data", data, "-p", "QualityThreshold=0.6")
        _, probe = run_cli("run", "--local", "--definition", "fixtures.environment_pipeline", "--home", home,
                        "-p", f"StateDir={state_uri}")
    return SimpleNamespace(home=LocalHome(home), compiled=compiled, full=full, probe=probe)


def test_a_compiled_definition_and_its_code_hold_no_credential(with_credentials):
    compiled = with_credentials.compiled
    assert leaks({"definition": compiled.definition.encode(), **compiled.assets}) == []


def test_no_file_of_an_execution_holds_a_credential(with_credentials):
    assert with_credentials.full["status"] == "Succeeded", with_credentials.full["failure_reason"]
    files = {p.relative_to(with_credentials.home.root).as_posix(): p.read_bytes()
             for p in with_credentials.home.root.rglob("*") if p.is_file()}
    assert any(name.endswith("report.html") for name in files) and "registry.sqlite" in files
    assert leaks(files) == []


def test_a_job_sees_none_of_the_callers_aws_credentials(with_credentials):
    probe = with_credentials.probe
    assert probe["status"] == "Succeeded", probe["failure_reason"]
    record = with_credentials.home.execution(probe["execution_id"])
    (uri,) = [o["S3Output"]["S3Uri"] for o in steps_of(record)["Env"]["response"]["ProcessingOutputConfig"]["Outputs"]]
    environment = json.loads(open_store(None, root=with_credentials.home.s3).get_bytes(f"{uri}/Env.json"))["environment"]
    assert "PATH" in environment  # the job's environment really was recorded
    assert leaks({name: value.encode() for name, value in environment.items()}) == []
    # The only keys a job holds are the execution's own, for the loopback S3 endpoint over the local store.
    assert "AWS_SESSION_TOKEN" not in environment
    assert environment["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")
    assert environment["AWS_SHARED_CREDENTIALS_FILE"] == environment["AWS_CONFIG_FILE"] == "/dev/null"


# --- paths that would leave the run's directories ---------------------------------------------------


def set_path(kind: str, field: str, value: str):
    """A change to the Env step: the first ProcessingInputs/Outputs entry's `field` becomes `value`."""
    def change(arguments: dict) -> None:
        entries = arguments["ProcessingInputs"] if kind == "S3Input" else arguments["ProcessingOutputConfig"]["Outputs"]
        entries[0][kind][field] = value
    return change


ESCAPES = [  # (what, the change to the definition, what the reason must say, refused before the run or by the job)
    ("output LocalPath", set_path("S3Output", "LocalPath", "/opt/ml/processing/../../../etc"),
     "step Env: LocalPath of data: '/opt/ml/processing/../../../etc' is not a path under /opt/ml", "before"),
    ("input LocalPath", set_path("S3Input", "LocalPath", "/opt/ml/processing/input/../../../../tmp"),
     "is not a path under /opt/ml", "before"),
    ("input S3 key", set_path("S3Input", "S3Uri", "s3://ml-pipelines-dev/purchase-intent/../../../../etc"),
     "'..' would escape the storage directory", "before"),
    ("output S3 key", set_path("S3Output", "S3Uri", "s3://ml-pipelines-dev/x/../../../../../escaped"),
     "'..', '.', empty or absolute parts would escape the storage directory", "job"),
]


@pytest.fixture(scope="module")
def probe_pipeline():
    return compile_module("fixtures.environment_pipeline")


@pytest.mark.parametrize("what, change, reason, when", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_a_path_out_of_the_run_is_refused_and_nothing_is_written_outside(probe_pipeline, tmp_path, what, change,
                                                                          reason, when):
    """Paths the definition states are refused before anything runs; an output key is refused by the
    store when the job's outputs are uploaded, and the step fails."""
    definition = json.loads(probe_pipeline.definition)
    change(definition["Steps"][0]["Arguments"])
    home = LocalHome(tmp_path / "sandbox" / "home")
    state_uri, _ = fixture_state(home.root)
    run = functools.partial(run_pipeline, json.dumps(definition), pipeline_name=probe_pipeline.name, home=home,
                            store=local_store(home, probe_pipeline), parameters={"StateDir": state_uri})
    if when == "before":
        with pytest.raises(RunError, match=re.escape(reason)):
            run()
        assert not home.runs.exists()
    else:
        record = run()
        assert (record["status"], record["failed_step"]) == ("Failed", "Env")
        assert reason in record["failure_reason"]
    outside = [p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "sandbox")]
    assert outside == [] and not list(tmp_path.rglob("escaped*"))


# --- archives whose members would leave their directory -------------------------------------------


def hostile_tar(member: str) -> bytes:
    """A tar.gz holding a harmless inference.py beside `member`: a `../` path or a link out of the archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, target in (("code/inference.py", None), (member, "/etc" if member.startswith("link") else None)):
            info = tarfile.TarInfo(name)
            if target:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = 4
                tar.addfile(info, io.BytesIO(b"pass"))
    return buffer.getvalue()


MEMBERS = [("../../escaped.py", r"'\.\./\.\./escaped\.py' would be extracted to .*, which is outside the destination"),
           ("link-out", "'link-out' is a link to an absolute path")]  # a path up and out; a symlink to /etc


@pytest.fixture
def sandbox(tmp_path) -> SimpleNamespace:
    home = LocalHome(tmp_path / "home")
    return SimpleNamespace(root=tmp_path, home=home, store=open_store(None, root=home.s3))


def escaped(root: Path) -> list[Path]:
    """What a hostile member left behind anywhere under `root` (each would land inside it)."""
    return [*root.rglob("escaped*"), *root.rglob("link-out")]


@pytest.mark.parametrize("member, refusal", MEMBERS, ids=[m for m, _ in MEMBERS])
def test_a_source_archive_with_a_member_out_of_its_directory_fails_the_training_job(compile_with, sandbox, member,
                                                                                     refusal):
    compiled = compile_with(tuning=False)
    definition = json.loads(compiled.definition)
    train = copy.deepcopy(next(s for s in definition["Steps"] if s["Name"] == "Train"))
    for channel in train["Arguments"]["InputDataConfig"]:
        channel["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://ml-pipelines-dev/data/{channel['ChannelName']}"
        sandbox.store.put_bytes(f"s3://ml-pipelines-dev/data/{channel['ChannelName']}/part.csv", b"Revenue\n0\n")
    source = json.loads(train["Arguments"]["HyperParameters"]["sagemaker_submit_directory"])
    sandbox.store.put_bytes(source, hostile_tar(member))
    record = run_pipeline({**definition, "Steps": [train]}, pipeline_name=compiled.name, home=sandbox.home,
                          store=sandbox.store)
    assert (record["status"], record["failed_step"]) == ("Failed", "Train")
    assert re.fullmatch(f"ClientError: cannot unpack sourcedir.tar.gz: {refusal}", record["failure_reason"])
    assert escaped(sandbox.root) == []


def hostile_package(store, member: str) -> dict:
    uri = "s3://ml-pipelines-dev/models/hostile/model.tar.gz"
    store.put_bytes(uri, hostile_tar(member))
    return {"ModelPackageArn": f"arn:aws:sagemaker:{REGION}:000000000000:model-package/hostile/1",
            "ModelPackageGroupName": "hostile", "ModelPackageVersion": 1, "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {"Containers": [{"Image": XGBOOST_IMAGE, "ModelDataUrl": uri, "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}}]}}


@pytest.mark.parametrize("member, refusal", MEMBERS, ids=[m for m, _ in MEMBERS])
def test_a_model_archive_with_a_member_out_of_its_directory_is_neither_served_nor_used(sandbox, member, refusal):
    package = hostile_package(sandbox.store, member)
    with pytest.raises(LocalEndpointError, match=f"cannot unpack s3://.*/model.tar.gz: {refusal}"):
        local_endpoint.unpack(sandbox.store, package, sandbox.root / "endpoint")
    rows = write_csv(generate(5, seed=1), sandbox.root / "rows.csv")
    sandbox.store.put_file("s3://ml-pipelines-dev/scoring/rows.csv", rows)
    with pytest.raises(LocalEndpointError, match=f"ClientError: cannot unpack model.tar.gz: {refusal}"):
        local_endpoint.batch_transform(sandbox.home, sandbox.store, package,
                                       input_uri="s3://ml-pipelines-dev/scoring/rows.csv", output_uri=None,
                                       output_root="s3://ml-pipelines-dev/transform", instance_type="ml.m5.large")
    assert escaped(sandbox.root) == []
