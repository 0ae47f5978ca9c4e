"""Training channels with `S3DataType: AugmentedManifestFile` run locally as SageMaker streams them: Pipe mode,
the channel's AttributeNames per manifest line, `-ref` attributes as their objects' bytes, RecordIO-wrapped
when asked, a pipe per epoch (https://docs.aws.amazon.com/sagemaker/latest/dg/augmented-manifest.html)."""
from __future__ import annotations

import io
import json
import tarfile
import threading

import pytest
from conftest import SDK_V2_SAMPLES, run_cli, steps_of
from fixtures import ground_truth

from pipelines.local import LocalHome, open_store, scope
from pipelines.local.pipes import Feeder, ManifestError, records, recordio, write_stream

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "labeled-samples"


@SDK_V2_SAMPLES
def test_recordio_framing_reads_back_with_the_sdks_reader():
    from sagemaker.amazon.common import read_recordio

    data = [b"", b"a", b"abcd", b"abcde", json.dumps({"class-name": "tennis"}).encode()]
    assert list(read_recordio(io.BytesIO(b"".join(recordio(d) for d in data)))) == data


def test_each_line_sends_its_attributes_in_order_and_ref_attributes_as_their_objects():
    manifest = b"\n".join(json.dumps(line).encode() for line in [
        {"image-ref": "s3://b/one.bin", "is-a-cat": 1, "note": "x", "meta": {"k": [1, 2]}},
        {"note": "y", "is-a-cat": 0, "image-ref": "s3://b/two.bin", "meta": {}}])
    objects = {"s3://b/one.bin": b"\x00\x01", "s3://b/two.bin": b"\x02"}
    got = list(records(manifest, ["image-ref", "is-a-cat", "meta"], objects.__getitem__, "m"))
    assert got == [b"\x00\x01", b"1", b'{"k": [1, 2]}', b"\x02", b"0", b"{}"]  # "note" is not listed: ignored
    with pytest.raises(ManifestError, match=r"m line 1 has no attribute 'label' \(AttributeNames lists it\)"):
        list(records(manifest, ["is-a-cat", "label"], objects.__getitem__, "m"))
    assert list(records(b'{"t": "Call me Ishmael"}', ["t"], objects.__getitem__, "m")) == [b"Call me Ishmael"]


def test_each_epoch_has_its_pipe_read_in_order_and_stopping_lets_a_waiting_writer_go(tmp_path):
    stream = tmp_path / "stream"
    write_stream(stream, b'{"a": "x"}\n{"a": "yz"}\n', ["a"], "None", lambda uri: b"", "m")
    assert stream.read_bytes() == b"xyz"  # no wrapping: records follow each other
    feeder = Feeder(tmp_path / "data", "train", stream).start()
    try:
        assert (tmp_path / "data" / "train_0").is_fifo()  # there before the container opens it
        got = []

        def reader():
            for epoch in range(3):
                with open(tmp_path / "data" / f"train_{epoch}", "rb") as f:
                    got.append(f.read())

        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(timeout=20)
        assert got == [b"xyz"] * 3
    finally:
        feeder.stop()  # its writer waits at train_3, which no one opens
    assert not feeder._thread.is_alive()


def _training(mode="Pipe", program=True, wrapper="RecordIO", count=1):
    return {"AlgorithmSpecification": {"TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                         "sagemaker-scikit-learn:1.2-1-cpu-py3",
                                       "TrainingInputMode": mode},
            "HyperParameters": {"sagemaker_program": '"train.py"'} if program else {},
            "OutputDataConfig": {"S3OutputPath": "s3://b/out"}, "ResourceConfig": {"InstanceCount": count},
            "InputDataConfig": [{"ChannelName": "train", "RecordWrapperType": wrapper, "DataSource": {"S3DataSource": {
                "S3DataType": "AugmentedManifestFile", "S3Uri": "s3://b/output.manifest",
                "S3DataDistributionType": "FullyReplicated", "AttributeNames": ["source", "sport"]}}}]}


@pytest.mark.parametrize("request_, message", [
    (_training(mode="File"), "S3DataType AugmentedManifestFile needs InputMode Pipe (SageMaker refuses it in File mode)"),
    (_training(program=False), "the built-in algorithms' Pipe mode is not emulated"),
    (_training(wrapper="Protobuf"), "RecordWrapperType must be None or RecordIO"),
])
def test_what_sagemaker_or_the_local_runner_would_not_run_is_refused_before_the_run(request_, message):
    assert any(message in problem for problem in scope.training(request_)), list(scope.training(request_))
    assert list(scope.training(_training())) == []


@SDK_V2_SAMPLES
def test_a_plain_sdk_pipeline_training_on_a_ground_truth_manifest_runs_locally(tmp_path):
    from fixtures.aws_samples.labeled.pipeline import get_pipeline

    from pipelines.sdk_pipelines import offline

    with offline(buckets=[BUCKET]) as sdk:
        definition, stage = sdk.export(get_pipeline("us-east-1", ROLE, BUCKET), tmp_path / "build")
    doc = json.loads(definition.read_text())
    channel = doc["Steps"][0]["Arguments"]["InputDataConfig"][0]
    assert (channel["DataSource"]["S3DataSource"]["S3DataType"], channel["InputMode"], channel["RecordWrapperType"]) \
        == ("AugmentedManifestFile", "Pipe", "RecordIO")  # what the SDK wrote, run as it is
    lines, _ = ground_truth.single_label(300)
    manifest = ground_truth.write(lines, tmp_path / "output.manifest")
    home = tmp_path / "home"
    code, summary = run_cli("run", "--local", "--home", home, "--definition-json", definition, *stage,
                            "--stage", f"s3://{BUCKET}/labels/output.manifest={manifest}")
    assert code == 0, summary["failure_reason"]
    record = LocalHome(home).execution(summary["execution_id"])
    train = steps_of(record)["TrainOnLabels"]
    artifact = train["response"]["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(fileobj=io.BytesIO(open_store(None, root=home / "s3").get_bytes(artifact))) as tar:
        result = json.loads(tar.extractfile("summary.json").read())
    assert result["rows_per_epoch"] == [300, 300] and result["classes"] == sorted(ground_truth.CLASSES)
    assert (result["input_mode"], result["wrapper"]) == ("Pipe", "RecordIO") and result["accuracy"] > 0.9
