"""Any framework image for processing and training, metric definitions as written, hyperparameters
untouched, and model code named by entry_point: compiled offline, the SDK's way. The project's
image table (`pipelines.compiler.images`) names every image as the installed SDK's `image_uris` does."""
from __future__ import annotations

import functools
import json

import pytest

from conftest import PROJECT_ROOT, REGION, json_steps
from sdk_oracle import sdk as sdks

from pipelines.compiler import compile_pipeline
from pipelines.compiler.images import FRAMEWORKS, image_uri
from pipelines.config import Config, ConfigError
from pipelines.dsl import DefinitionError, Image, Pipeline, Report

SCRIPT = PROJECT_ROOT / "tests/fixtures/scripts/fixture_step.py"
MODEL_CODE = PROJECT_ROOT / "tests/fixtures/diabetes/model"
CFG = Config(region=REGION, bucket="b")
CUSTOM = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mine:1"


def pipeline(image, *, instance_type="ml.m5.xlarge", metrics=None, register=None) -> Pipeline:
    """Prep -> Train in `image`; with `register` (Register's image, entry_point, ...), Eval -> Register too."""
    p = Pipeline("images")
    prep = p.processing("Prep", SCRIPT, image=image, outputs=["data"], instance_type=instance_type)
    train = p.training("Train", MODEL_CODE, image=image, channels={"train": prep.out.data},
                       hyperparameters={"alpha": 0.5, "target": "y", "flag": "true"},
                       metrics=metrics or {"rmse": r"rmse: ([0-9.]+)"}, instance_type=instance_type)
    if register:
        ev = p.processing("Eval", SCRIPT, outputs=["evaluation"], instance_type="ml.m5.large",
                          reports={"evaluation": Report("evaluation", "evaluation.json")})
        p.register("Register", train.model, group="g", report=ev.report("evaluation"), **register)
    return p


def steps(p: Pipeline, cfg: Config = CFG) -> dict[str, dict]:
    return json_steps(compile_pipeline(p, cfg).definition)


@pytest.mark.parametrize("image, uri", [
    (Image("sklearn", "1.2-1"), "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"),
    ("xgboost", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"),
    (Image("pytorch", "2.6.0", py_version="py312"), "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312"),
    (Image("tensorflow", "2.19.0", py_version="py312"),
     "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.19.0-cpu-py312"),
    (CUSTOM, CUSTOM),
])
def test_processing_and_training_run_in_the_named_image_with_the_scripts_hyperparameters_untouched(image, uri):
    compiled = steps(pipeline(image))
    assert compiled["Prep"]["Arguments"]["AppSpecification"]["ImageUri"] == uri
    train = compiled["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == uri
    assert train["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "rmse", "Regex": r"rmse: ([0-9.]+)"}]
    hps = {k: json.loads(v) for k, v in train["HyperParameters"].items()}
    assert {k: v for k, v in hps.items() if not k.startswith("sagemaker_")} == {"alpha": 0.5, "target": "y", "flag": "true"}
    assert hps["sagemaker_program"] == "train.py" and hps["sagemaker_submit_directory"].startswith("s3://b/images/code/")


def test_a_gpu_instance_gets_the_gpu_image_and_hugging_face_names_its_base():
    image = Image("huggingface", "4.56.2", base="pytorch2.8.0", py_version="py312")
    uri = steps(pipeline(image, instance_type="ml.g5.xlarge"))["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    assert uri.startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-training:2.8.0-transformers4.56.2-gpu")


def test_compiles_of_every_image_are_byte_identical():
    for image in (Image("pytorch", "2.6.0", py_version="py312"), CUSTOM):
        assert compile_pipeline(pipeline(image), CFG).definition == compile_pipeline(pipeline(image), CFG).definition


@pytest.mark.parametrize("image, instance_type, region, reason", [
    (Image("pytorch", "9.9", py_version="py312"), "ml.m5.xlarge", REGION,
     r"version 9\.9 is not in the project's pytorch training images \(known: 2\.0\.0, .*2\.8\.0\)"),
    (Image("pytorch", "2.6.0", py_version="py310"), "ml.m5.xlarge", REGION,
     r"Python py310 is not this image's \(py312\)"),
    (Image("huggingface", "4.56.2", base="pytorch2.8.0"), "ml.m5.xlarge", REGION,
     r"there is no cpu image for ml\.m5\.xlarge \(the images run on: gpu\)"),
    (Image("huggingface", "4.56.2", base="pytorch2.1.0"), "ml.g5.xlarge", REGION,
     "runs on pytorch2.8.0, not pytorch2.1.0"),
    (Image("sklearn", "1.2-1"), "ml.c7g.xlarge", REGION, "Graviton"),
    (Image("pytorch", "2.6.0"), "ml.m5.xlarge", "ap-south-2",
     r"region ap-south-2 is not in the project's table"),
])
def test_an_image_the_table_lacks_is_refused_with_what_it_has(image, instance_type, region, reason):
    refused = f"step 'Prep': no training image for .*{reason}.*or name the image by its URI"
    with pytest.raises(DefinitionError, match=refused):
        steps(pipeline(image, instance_type=instance_type), Config(region=region, bucket="b"))


def _table():
    """(scope, image) for every version and alias of the table, with each image's first Python."""
    for name, framework in FRAMEWORKS.items():
        for scope, versions in framework.versions.items():
            for written in [*versions, *framework.aliases[scope]]:
                entry = versions[framework.aliases[scope].get(written, written)]
                for base in ([entry.base, entry.base.rsplit(".", 1)[0]] if entry.base else [None]):
                    py = entry.py_versions[0] if entry.py_versions else None
                    yield scope, Image(name, written, py_version=py, base=base)


def _uri_or_refused(lookup, *args, **kwargs) -> str:
    try:
        return lookup(*args, **kwargs)
    except ValueError:  # the table's ImageError is one too
        return "refused"


@pytest.fixture
def sdk_image_uris(monkeypatch):
    """The installed SDK's image_uris, with the endpoint data it reads on every call read once."""
    image_uris = sdks.load().image_uris
    monkeypatch.setattr(image_uris.utils, "_botocore_resolver", functools.cache(image_uris.utils._botocore_resolver))
    return image_uris


@pytest.mark.parametrize("instance_type", ["ml.m5.xlarge", "ml.g5.xlarge"])
def test_the_image_table_names_every_image_as_the_installed_sdk_does(sdk_image_uris, instance_type):
    """Every version, alias, processor and region of the table, against the SDK's own image_uris."""
    retrieve = sdk_image_uris.retrieve
    differ = []
    for scope, image in _table():
        for region in FRAMEWORKS[image.framework].accounts:
            ours = _uri_or_refused(image_uri, image, region, instance_type, scope)
            theirs = _uri_or_refused(retrieve, image.framework, region=region, version=image.version,
                                     py_version=image.py_version, instance_type=instance_type, image_scope=scope,
                                     base_framework_version=image.base)
            if ours != theirs:
                differ.append((scope, image, region, ours, theirs))
    assert differ == []


def test_bare_metric_names_keep_the_name_equals_value_shorthand():
    train = steps(pipeline("xgboost", metrics=["validation:auc"]))["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "validation:auc", "Regex": r"validation:auc=([-+0-9.eE]+);"}]


@pytest.mark.parametrize("metrics, message", [
    ({"rmse": "rmse: [0-9.]+"}, "the regex of metric 'rmse' needs a group around the value"),
    ({"rmse": "rmse: ([0-9.]+"}, "the regex of metric 'rmse' does not compile"),
])
def test_a_metric_regex_without_a_value_group_is_refused(metrics, message):
    with pytest.raises(DefinitionError, match=message):
        pipeline("xgboost", metrics=metrics)


def test_a_model_that_names_its_entry_point_is_registered_as_the_sdk_does_without_a_repack_job():
    sklearn = Image("sklearn", "1.2-1")
    compiled = steps(pipeline(sklearn, register=dict(image=sklearn, entry_point="inference.py", source_dir=MODEL_CODE)))
    assert not [name for name in compiled if "Repack" in name]
    container = compiled["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["Image"].endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert container["Framework"] == "SKLEARN" and container["FrameworkVersion"] == "1.2-1"
    env = container["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == compiled["Train"]["Arguments"]["HyperParameters"][
        "sagemaker_submit_directory"].strip('"')  # the same folder as training: the same content-addressed bundle


def test_models_whose_sdk_would_repack_are_refused_with_the_way_out():
    with pytest.raises(DefinitionError, match="needs the code inside the model archive"):
        pipeline("xgboost", register=dict(image=Image("pytorch", "2.6.0", py_version="py312"),
                                          entry_point="inference.py", source_dir=MODEL_CODE))
    isolated = Config(region=REGION, bucket="b", network_isolation=True)
    p = Pipeline("isolated")
    prep = p.processing("Prep", SCRIPT, outputs=["data"], instance_type="ml.m5.large")
    train = p.training("Train", MODEL_CODE, image=Image("sklearn", "1.2-1"), channels={"train": prep.out.data},
                       instance_type="ml.m5.large")
    p.model("Serve", train.model, image=Image("sklearn", "1.2-1"), entry_point="inference.py", source_dir=MODEL_CODE)
    with pytest.raises(ConfigError, match="with network_isolation, SageMaker repacks"):
        steps(p, isolated)
