"""The oracle itself (tests/sdk_oracle): it finds the installed SDK from package metadata and
compiles through it offline, without reaching AWS or reading the machine's SDK defaults, so that
what tests/test_same_json.py compares the compiler with is the SDK's own JSON and nothing else."""
from __future__ import annotations

import pytest
from conftest import example, example_config
from sdk_oracle import SdkError, compile_with_sdk
from sdk_oracle import builder as oracle
from sdk_oracle import sdk as sdks
from sdk_oracle.adapter import AwsCallDuringCompile



def purchase(**overrides):
    cfg = example_config(**overrides)
    return example().definition(cfg), cfg


def test_the_oracles_session_refuses_every_aws_call(monkeypatch):
    sessions = []

    def spy(*args):
        sessions.append(original(*args))
        return sessions[-1]

    sdk = sdks.load()
    original = sdk.session
    monkeypatch.setattr(sdk, "session", spy)
    compile_with_sdk(*purchase())
    session, = sessions
    with pytest.raises(AwsCallDuringCompile, match="ListPipelines"):
        session.sagemaker_client.list_pipelines()
    with pytest.raises(AwsCallDuringCompile, match="GetCallerIdentity"):
        session.account_id()
    with pytest.raises(AwsCallDuringCompile, match="PutObject"):
        session.boto_session.client("s3").put_object(Bucket="b", Key="k", Body=b"x")


def test_an_sdk_call_during_an_oracle_compile_fails_it(monkeypatch):
    """Local code paths make the SDK upload them; the compile must fail instead of reaching S3."""
    bundles = oracle.code_assets
    monkeypatch.setattr(oracle, "code_assets", lambda pipeline, cfg: {  # scripts by local path
        path: (str(path) if path.is_file() else uri, data) for path, (uri, data) in bundles(pipeline, cfg).items()})
    with pytest.raises(AwsCallDuringCompile, match="it must stay offline"):
        compile_with_sdk(*purchase())


def test_the_machines_sagemaker_sdk_defaults_do_not_reach_the_oracle(monkeypatch, tmp_path):
    """A developer's ~/.config/sagemaker/config.yaml must not change what the SDK compiles."""
    before = {tuning: compile_with_sdk(*purchase(tuning=tuning)) for tuning in (True, False)}
    user_config = tmp_path / "config.yaml"
    user_config.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  ProcessingJob:\n"
        "    ProcessingResources: {ClusterConfig: {VolumeKmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/leak'}}\n"
        "    Tags: [{Key: leaked, Value: from-my-laptop}]\n"
        "  TrainingJob:\n"
        "    ResourceConfig: {VolumeKmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/leak'}\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(user_config))
    sdk = sdks.load()
    sdk.session.cache_clear()  # a session built now would read the file
    try:
        for tuning in (True, False):
            assert compile_with_sdk(*purchase(tuning=tuning)) == before[tuning]
    finally:
        sdk.session.cache_clear()


@pytest.mark.parametrize("versions, found", [
    ({"sagemaker": "2.257.7"}, (2, "sagemaker 2.257.7")),
    ({"sagemaker": "3.27.0", "sagemaker-mlops": "1.27.0", "sagemaker-train": "1.27.0", "sagemaker-serve": "1.27.0",
      "sagemaker-core": "2.27.0"},
     (3, "sagemaker-mlops 1.27.0, sagemaker-train 1.27.0, sagemaker-serve 1.27.0, sagemaker-core 2.27.0")),
    ({"sagemaker-mlops": "1.27.0", "sagemaker-core": "2.27.0"}, (3, "sagemaker-mlops 1.27.0, sagemaker-core 2.27.0")),
])
def test_the_installed_sdk_is_told_from_package_metadata(monkeypatch, versions, found):
    monkeypatch.setattr(sdks, "_version", versions.get)
    sdks.installed.cache_clear()
    try:
        assert sdks.installed() == found
    finally:
        sdks.installed.cache_clear()


@pytest.mark.parametrize("versions, reason", [
    ({}, r"the SDK oracle needs the SageMaker Python SDK v2 or v3: pip install -e '\.\[sdk-v2\]'"),
    ({"sagemaker": "1.72.0"}, "sagemaker 1.72.0 is installed, which this project does not support"),
    ({"sagemaker": "3.0"}, "sagemaker 3.0 is installed without sagemaker-mlops"),
    ({"sagemaker": "2.257.7", "sagemaker-mlops": "1.27.0"}, "both installed; they cannot share an environment"),
])
def test_no_usable_sdk_is_a_one_line_error(monkeypatch, versions, reason):
    monkeypatch.setattr(sdks, "_version", versions.get)
    sdks.installed.cache_clear()
    try:
        with pytest.raises(SdkError, match=reason):
            sdks.installed()
    finally:
        sdks.installed.cache_clear()
