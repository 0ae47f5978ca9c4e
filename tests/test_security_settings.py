"""KMS keys, VPC, network isolation and inter-container encryption reach every job when configured."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import example, example_config, json_steps
from sdk_matrix import KMS, SECURE

from examples.purchase_intent.shoppers_data import generate, write_csv
from pipelines.compiler import compile_pipeline
from pipelines.config import ConfigError
from pipelines.local import LocalHome, open_store, run_pipeline

JOB_TYPES = ("Processing", "Training", "Tuning", "Transform", "Model")


def _config(tmp_path, text=SECURE, **overrides):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return example_config("dev", path, **overrides)


def _job_settings(step: dict) -> dict:
    """(kms, vpc, isolation, encryption) as each request type spells them."""
    args = step["Arguments"]
    kind = step["Type"]
    if kind == "Processing":
        network = args.get("NetworkConfig", {})
        return {"volume_kms": args["ProcessingResources"]["ClusterConfig"].get("VolumeKmsKeyId"),
                "output_kms": args["ProcessingOutputConfig"].get("KmsKeyId"), "vpc": network.get("VpcConfig"),
                "isolation": network.get("EnableNetworkIsolation"),
                "encryption": network.get("EnableInterContainerTrafficEncryption")}
    if kind in ("Training", "Tuning"):
        job = args.get("TrainingJobDefinition", args)
        resources = job.get("ResourceConfig") or job.get("HyperParameterTuningResourceConfig")
        return {"volume_kms": resources.get("VolumeKmsKeyId"), "output_kms": job["OutputDataConfig"].get("KmsKeyId"),
                "vpc": job.get("VpcConfig"), "isolation": job.get("EnableNetworkIsolation"),
                "encryption": job.get("EnableInterContainerTrafficEncryption")}
    if kind == "Transform":
        return {"volume_kms": args["TransformResources"].get("VolumeKmsKeyId"),
                "output_kms": args["TransformOutput"].get("KmsKeyId")}
    return {"vpc": args.get("VpcConfig"), "isolation": args.get("EnableNetworkIsolation")}  # CreateModel


@pytest.mark.parametrize("tuning", [True, False])
def test_every_job_carries_the_configured_security_settings(tmp_path, tuning):
    cfg = _config(tmp_path, tuning=tuning, batch_transform=True)
    compiled = compile_pipeline(example().definition(cfg), cfg)
    jobs = [s for s in json_steps(compiled.definition).values() if s["Type"] in JOB_TYPES]
    assert {s["Type"] for s in jobs} == {"Processing", "Tuning" if tuning else "Training", "Model", "Transform"}
    vpc = {"Subnets": ["subnet-aaa", "subnet-bbb"], "SecurityGroupIds": ["sg-123"]}
    for step in jobs:
        settings = _job_settings(step)
        if "volume_kms" in settings:
            assert settings["volume_kms"] == settings["output_kms"] == KMS, step["Name"]
        if "vpc" in settings:
            assert {k: sorted(v) for k, v in settings["vpc"].items()} == vpc, step["Name"]
            assert settings["isolation"] is True, step["Name"]
        if "encryption" in settings:
            assert settings["encryption"] is True, step["Name"]


def test_the_default_config_adds_no_security_settings():
    cfg = example_config(region="us-east-1")
    compiled = compile_pipeline(example().definition(cfg), cfg)
    for word in ("KmsKeyId", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"):
        assert word not in compiled.definition


def test_a_vpc_needs_subnets_and_security_groups(tmp_path):
    with pytest.raises(ConfigError, match="both subnets and security_group_ids"):
        _config(tmp_path, '[default]\nbucket = "b"\nsubnets = ["subnet-1"]\n[dev]\n')
    with pytest.raises(ConfigError, match="'subnets' .* must be a list of strings, got \\[1\\]"):
        _config(tmp_path, '[default]\nbucket = "b"\nsubnets = [1]\nsecurity_group_ids = ["sg"]\n[dev]\n')


def test_a_network_isolated_training_job_runs_locally_from_its_code_channel(tmp_path):
    """With isolation the code travels as a `code` channel; the local runner must still find it."""
    cfg = _config(tmp_path, tuning=False)
    compiled = compile_pipeline(example().definition(cfg), cfg)
    train = next(s for s in json_steps(compiled.definition).values() if s["Type"] == "Training")
    assert "code" in [c["ChannelName"] for c in train["Arguments"]["InputDataConfig"]]
    home = LocalHome(tmp_path / "home")
    store = open_store(None, root=home.s3)
    for uri, data in compiled.assets.items():
        store.put_bytes(uri, data)
    store.put_file("s3://secure-bucket/data/sessions.csv", write_csv(generate(900, seed=3), tmp_path / "s.csv"))
    record = run_pipeline(compiled.definition, pipeline_name=compiled.name, home=home, store=store,
                          parameters={"InputData": "s3://secure-bucket/data/sessions.csv", "QualityThreshold": "0.5"})
    assert record["status"] == "Succeeded", record["failure_reason"]
    assert Path(next(s["log"] for s in record["steps"] if s["name"] == "Train")).read_text()
