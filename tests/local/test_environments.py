"""Jobs run in the package versions of their image: a cached virtualenv per image, Python and requirements."""
import json
import os
import re
import sys
from pathlib import Path

import pytest

from pipelines.local import environments
from pipelines.local.images import IMAGES, UnknownImage, image_for
from pipelines.local.container import namespace_unavailable_reason
from pipelines.local.jobs import JobContext, JobFailed, run_processing, run_training
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
    (exact, exact_then, _, forced), (nearest, then, options, unforced) = \
        environments._attempts(IMAGES[("sagemaker-scikit-learn", "0.23-1")])
    assert forced == exact and unforced == []  # the image's pins win over what its packages declare
    assert "scikit-learn==0.23.2" in exact and "pandas==1.1.3" in exact and "requests==2.27.1" in exact
    assert "scikit-learn>=0.23.2" in nearest and options == ["--resolution", "lowest-direct"]
    assert "boto3==1.28.0" in exact  # the image's 1.24.17 cannot reach AWS_ENDPOINT_URL_S3
    assert not any(spec.startswith("botocore") for spec in exact + nearest)  # then boto3's own botocore
    assert "tqdm" in exact_then and "tqdm" in then  # Miniconda's, at no version: the newest that fits


def test_ranges_are_never_taken_at_their_lowest():
    """lowest-direct would make `requests<2.21` requests 2.0.0 and `setuptools<81` 0.9.8: ranges and
    unversioned packages go in after the pins, at the newest release that fits, as pip chose them."""
    _, (nearest, then, _, _) = environments._attempts(IMAGES[("sagemaker-xgboost", "0.90-1")])
    assert "requests<2.21" in then and "gunicorn<20.0.0" in then
    assert not any(spec.startswith(("requests", "gunicorn")) for spec in nearest)


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


def _source_dir_request(ctx, extra: dict[str, bytes]) -> dict:
    """A scikit-learn training job whose source dir holds versions.py and `extra` files, put in ctx's store."""
    request = training_request(ctx)
    request["AlgorithmSpecification"]["TrainingImage"] = SKLEARN
    request["HyperParameters"] = {"sagemaker_program": '"versions.py"',
                                  "sagemaker_submit_directory": '"s3://bkt/code/sourcedir.tar.gz"'}
    ctx.store.put_bytes("s3://bkt/code/sourcedir.tar.gz", tar_gz({
        "versions.py": (SCRIPTS / "versions.py").read_bytes(), **extra}))
    return request


def test_a_training_source_dir_requirements_txt_is_installed_as_the_toolkit_does(tmp_path):
    ctx = _ctx(tmp_path)
    request = _source_dir_request(ctx, {"requirements.txt": b"tabulate==0.9.0\n"})
    run_training("train", request, ctx)
    assert _versions(ctx.log_path.read_text()) == {"scikit-learn": "1.4.2", "pandas": "2.3.2", "numpy": "2.1.0",
                                                   "tabulate": "0.9.0"}


def test_an_environments_commands_run_its_own_python(tmp_path):
    """A script's `pip install dill` runs the environment's pip: its console scripts start the interpreter
    the environment has at its final path (a build renamed into place left them naming a vanished one)."""
    manifest = environments.ensure(IMAGES[("sagemaker-scikit-learn", "1.4-2")])
    scripts = [p for p in (Path(manifest["path"]) / "bin").iterdir() if p.is_file() and p.read_bytes()[:2] == b"#!"]
    assert any(p.name == "pip" for p in scripts)
    for script in scripts:
        interpreter = script.read_text().splitlines()[0][2:].split()[0]
        assert Path(interpreter).is_file() and interpreter.startswith(manifest["path"]), (script, interpreter)
    ctx = _ctx(tmp_path)
    ctx.store.put_bytes("s3://bkt/raw/f.csv", b"1\n")
    run_processing("Prep", processing_request(ctx, "commands.py", ["pip"]), ctx)
    ran = re.search(r"^ran (\S+): pip \S+ from (\S+)", ctx.log_path.read_text(), re.M)
    assert ran and ran.group(1) == f"{manifest['path']}/bin/pip" and ran.group(2).startswith(manifest["path"])


SETUP_PY = b"""from setuptools import setup
setup(name="trainer", version="1.0", py_modules=["versions"], install_requires=["tabulate==0.9.0"])
"""


@pytest.mark.skipif(namespace_unavailable_reason() is not None, reason="the install needs a private filesystem")
def test_a_training_source_dir_with_setup_py_is_installed_as_a_package_as_the_toolkit_does(tmp_path):
    """sagemaker-training's PYTHON_PACKAGE entry point: `pip install .` in the code directory (its
    install_requires with it), then `python -m versions`; the install ends with the job's filesystem."""
    ctx = _ctx(tmp_path)
    request = _source_dir_request(ctx, {"setup.py": SETUP_PY})
    run_training("train", request, ctx)
    log = ctx.log_path.read_text()
    assert "-m pip install ." in log and "Successfully installed" in log and "trainer-1.0" in log
    assert _versions(log)["tabulate"] == "0.9.0"
    environment = environments.ensure(IMAGES[("sagemaker-scikit-learn", "1.4-2")])
    assert not list(Path(environment["path"]).glob("lib/python*/site-packages/tabulate*"))  # the job's alone


def test_a_setup_py_source_dir_is_refused_where_its_install_would_outlive_the_job(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.isolation = "paths"
    request = _source_dir_request(ctx, {"setup.py": SETUP_PY})
    with pytest.raises(JobFailed, match="has a setup.py, which the training toolkit installs into the job's Python"):
        run_training("train", request, ctx)


def test_without_uv_or_the_package_index_a_job_runs_on_the_host_and_says_why(tmp_path, monkeypatch):
    def unavailable():
        raise environments.EnvironmentFailure("uv is not installed: pip install uv (or run with --job-env host)")

    monkeypatch.setenv(environments.CACHE_ENV, str(tmp_path / "envs"))
    monkeypatch.setattr(environments, "_uv_binary", unavailable)
    chosen = environments.job_python(IMAGES[("sagemaker-xgboost", "3.0-5")], "image")
    assert chosen.bin_dir is None and chosen.python == sys.executable
    assert chosen.environment()["PATH"].startswith(str(Path(sys.executable).parent) + os.pathsep)
    assert chosen.log_lines[0].endswith("job environment: host")
    assert chosen.log_lines[-1] == "[local runner] note: uv is not installed: pip install uv (or run with --job-env host)"
    assert not any((tmp_path / "envs").glob("*/local-env.json"))  # nothing cached: the next job tries again


# --- what the public pipelines hit: an image's package, and its working directory -----------------

XGBOOST_305 = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def test_a_script_imports_what_its_image_has_and_fails_on_what_it_lacks(tmp_path):
    """SageMaker Projects' seed preprocess.py imports requests, which SKLearn 0.23-1 has from Miniconda."""
    has, lacks = _ctx(tmp_path, "has"), _ctx(tmp_path, "lacks")
    for ctx in (has, lacks):
        ctx.store.put_bytes("s3://bkt/raw/f.csv", b"1\n")
    run_processing("Preprocess", processing_request(has, "imports.py", ["requests", "sklearn", "pandas"],
                                                    image=SKLEARN_023), has)
    assert "imported requests 2." in has.log_path.read_text()
    with pytest.raises(JobFailed, match="No module named 'xgboost'"):  # an SKLearn image has no xgboost
        run_processing("Preprocess", processing_request(lacks, "imports.py", ["xgboost"], image=SKLEARN_023), lacks)


@pytest.mark.skipif(namespace_unavailable_reason() is not None, reason="extracting to '..' needs a private filesystem")
def test_an_evaluation_that_extracts_to_its_parent_folder_finds_the_model_in_its_working_directory(tmp_path):
    import numpy
    import xgboost

    ctx = _ctx(tmp_path)
    booster = xgboost.train({"objective": "reg:squarederror"},
                            xgboost.DMatrix(numpy.array([[1.0, 2.0], [3.0, 4.0]]), label=[0.0, 1.0]), 2)
    booster.save_model(str(tmp_path / "model.json"))
    ctx.store.put_bytes("s3://bkt/raw/model.tar.gz", tar_gz({"xgboost-model": (tmp_path / "model.json").read_bytes()}))
    run_processing("Evaluate", processing_request(ctx, "evaluate_in_cwd.py", [], image=XGBOOST_305), ctx)
    evaluation = json.loads(ctx.store.get_bytes("s3://bkt/out/report/evaluation.json"))
    assert evaluation["cwd"] == "/"
    assert evaluation["prediction"] == pytest.approx(float(booster.predict(xgboost.DMatrix(numpy.array([[1.0, 2.0]])))[0]))
    assert not any(Path(p, "xgboost-model").exists() for p in ("/", "/opt"))  # it landed in the job's own /


def test_serve_local_loads_the_model_in_its_image_environment(tmp_path):
    """`serve --local` is the serving container as a job's host: the model image's packages, not this Python's."""
    import os
    import sys
    import urllib.request

    import numpy
    import xgboost

    from conftest import PROJECT_ROOT
    from fixtures.servers import serving
    from pipelines.local import LocalHome, Registry, open_store

    booster = xgboost.train({"objective": "binary:logistic"},
                            xgboost.DMatrix(numpy.array([[0.1, 1.0], [0.9, 2.0]] * 10), label=[0, 1] * 10), 3)
    booster.save_model(str(tmp_path / "xgboost-model.json"))
    home = LocalHome(tmp_path / "home")
    uri = "s3://bkt/model/model.tar.gz"
    open_store(None, root=home.s3).put_bytes(uri, tar_gz({"xgboost-model": (tmp_path / "xgboost-model.json").read_bytes()}))
    Registry.of(home).register({"ModelPackageGroupName": "served", "ModelApprovalStatus": "Approved",
                                "InferenceSpecification": {"Containers": [{"Image": XGBOOST_305, "ModelDataUrl": uri}]}},
                               execution_id=None)
    command = lambda port: [sys.executable, "deploy.py", "serve", "--local", "--home", str(home.root),  # noqa: E731
                            "--group", "served", "--model-package", "1", "--port", str(port)]
    env = {**os.environ, "PIPELINES_JOB_ENV": "image"}
    with serving(command, "/ping", tmp_path / "serve.log", cwd=PROJECT_ROOT, env=env, timeout=600) as url:
        request = urllib.request.Request(f"{url}/invocations", data=b"0.1,1.0\n0.9,2.0\n", method="POST",
                                         headers={"Content-Type": "text/csv"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
            scores = [float(line) for line in response.read().decode().split()]
    expected = booster.predict(xgboost.DMatrix(numpy.array([[0.1, 1.0], [0.9, 2.0]])))
    assert scores == pytest.approx([float(v) for v in expected], rel=1e-5)
    log = (tmp_path / "serve.log").read_text()
    assert re.search(r"image sagemaker-xgboost:3\.0-5 .*job environment: \S+/sagemaker-xgboost-3\.0-5-", log), log
    assert not (home.root / "serving").exists() or not any((home.root / "serving").iterdir())  # cleaned up


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
