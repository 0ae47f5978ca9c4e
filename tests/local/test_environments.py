"""Jobs run in the package versions of their image: a cached virtualenv per image, Python and requirements."""
import json
import re

import pytest

from pipelines.local import environments
from pipelines.local.images import IMAGES, UnknownImage, image_for
from pipelines.local.jobs import JobContext, run_processing, run_training
from pipelines.local.storage import LocalStore

from test_jobs import SCRIPTS, SKLEARN, processing_request, tar_gz, training_request

SKLEARN_023 = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3"


@pytest.mark.parametrize("uri, key", [
    (SKLEARN, ("sagemaker-scikit-learn", "1.4-2")),
    ("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:3.0-5", ("sagemaker-xgboost", "3.0-5")),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3", ("sagemaker-xgboost", "1.0-1")),
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.20.0-cpu-py3",
     ("sagemaker-scikit-learn", "0.20.0")),
])
def test_image_uris_name_their_table_entry(uri, key):
    assert image_for(uri) is IMAGES[key]


def test_unknown_images_and_versions_are_refused_with_what_is_known():
    with pytest.raises(UnknownImage, match="emulates the sagemaker-scikit-learn and sagemaker-xgboost images"):
        image_for("123.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310")
    with pytest.raises(UnknownImage, match=r"version 9\.9-9 of sagemaker-xgboost .*known: 0\.90-1, .*3\.0-5"):
        image_for("123.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:9.9-9")


def test_an_environment_tries_the_image_versions_then_the_nearest_above_them():
    (exact, _), (nearest, options) = environments._attempts(IMAGES[("sagemaker-scikit-learn", "0.23-1")])
    assert "scikit-learn==0.23.2" in exact and "pandas==1.1.3" in exact
    assert "scikit-learn>=0.23.2" in nearest and options == ["--resolution", "lowest-direct"]
    assert "boto3==1.28.0" in exact  # the image's 1.24.17 cannot reach AWS_ENDPOINT_URL_S3


def _ctx(tmp_path, job="job"):
    (tmp_path / job).mkdir()
    return JobContext(store=LocalStore(tmp_path / "s3"), work_dir=tmp_path / job, log_path=tmp_path / f"{job}.log",
                      job_env="image")


def _versions(log: str) -> dict:
    return json.loads(re.search(r"^versions (.*)$", log, re.M).group(1))


def test_a_job_runs_in_its_image_versions_and_its_log_opens_with_them(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.store.put_bytes("s3://bkt/raw/f.csv", b"1\n")
    run_processing("Prep", processing_request(ctx, "versions.py", []), ctx)
    log = ctx.log_path.read_text()
    first = [line for line in log.splitlines() if "building the environment" not in line][:3]  # built now or not
    assert first[0].startswith("[local runner] image sagemaker-scikit-learn:1.4-2 (its Python: 3.10)")
    assert re.fullmatch(r"\[local runner\] Python 3\.\d+\.\d+ \(cpython\)", first[1])
    assert "scikit-learn==1.4.2" in first[2] and "pandas==2.3.2" in first[2] and "numpy==2.1.0" in first[2]
    assert _versions(log) == {"scikit-learn": "1.4.2", "pandas": "2.3.2", "numpy": "2.1.0"}


def test_an_image_whose_versions_do_not_install_here_gets_the_nearest_and_says_so(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.store.put_bytes("s3://bkt/raw/f.csv", b"1\n")
    response = run_processing("Prep", processing_request(ctx, "versions.py", [], image=SKLEARN_023), ctx)
    assert response["ProcessingJobStatus"] == "Completed"
    log = ctx.log_path.read_text()
    assert "the image's exact versions do not install on Python 3.11" in log
    notes = dict(re.findall(r"note: (\S+)==(\S+) instead of the image's", log))
    versions = _versions(log)
    assert versions["scikit-learn"] == notes["scikit-learn"]
    assert tuple(int(p) for p in versions["scikit-learn"].split(".")[:2]) >= (1, 1)  # the first with wheels here


def test_a_training_source_dir_requirements_txt_is_installed_as_the_toolkit_does(tmp_path):
    ctx = _ctx(tmp_path)
    request = training_request(ctx)
    request["AlgorithmSpecification"]["TrainingImage"] = SKLEARN
    request["HyperParameters"] = {"sagemaker_program": '"versions.py"',
                                  "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"'}
    ctx.store.put_bytes("s3://bkt/code/sourcedir.tar.gz", tar_gz({
        "versions.py": (SCRIPTS / "versions.py").read_bytes(), "requirements.txt": b"tabulate==0.9.0\n"}))
    run_training("train", request, ctx)
    assert _versions(ctx.log_path.read_text()) == {"scikit-learn": "1.4.2", "pandas": "2.3.2", "numpy": "2.1.0",
                                                   "tabulate": "0.9.0"}


def test_without_uv_or_the_package_index_a_job_runs_on_the_host_and_says_why(tmp_path, monkeypatch):
    def unavailable():
        raise environments.EnvironmentFailure("uv is not installed: pip install uv (or run with --job-env host)")

    monkeypatch.setenv(environments.CACHE_ENV, str(tmp_path / "envs"))
    monkeypatch.setattr(environments, "_uv_binary", unavailable)
    chosen = environments.job_python(IMAGES[("sagemaker-xgboost", "3.0-5")], "image")
    assert chosen.bin_dir is None and chosen.environment() == {}
    assert chosen.log_lines[0].endswith("job environment: host")
    assert chosen.log_lines[-1] == "[local runner] note: uv is not installed: pip install uv (or run with --job-env host)"
    assert not any((tmp_path / "envs").glob("*/local-env.json"))  # nothing cached: the next job tries again


def test_aws_built_in_k_means_is_refused_before_the_run_with_the_reason():
    from pipelines.local import scope

    uri = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"  # image_uris.retrieve("kmeans", "us-east-1")
    request = {"AlgorithmSpecification": {"TrainingImage": uri, "TrainingInputMode": "File"},
               "OutputDataConfig": {"S3OutputPath": "s3://b/out"}, "HyperParameters": {"k": "5", "feature_dim": "4"}}
    problems = list(scope.training(request))
    assert problems[0] == (f"image {uri!r} is AWS's built-in k-means algorithm, which is not emulated locally (its "
                           "closed-source container writes an MXNet model only it serves): train with "
                           "sklearn.cluster.KMeans in script mode on the scikit-learn image to run the same pipeline "
                           "here and in SageMaker")
