"""The definitions the project's compiler is held to against the SageMaker SDKs: every step type,
every kind of framework image and a custom one, model code named by entry_point, every security
setting, every step option (ordering, retries, cache, parameters as hyperparameters, categorical
ranges) and a region without SageMaker Debugger. Imported by tests/test_same_json.py, and run as
a script under the other SDK's interpreter (v2 and v3 cannot share an environment):

    python tests/sdk_matrix.py     # {"sdk": ..., "major": N, "sdk_json": {case: JSON}, "project_json": {case: JSON}}
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
KMS = "arn:aws:kms:us-east-1:111122223333:key/0b1c2d3e"
# Every security setting the config has (tests/test_security_settings.py checks each reaches every job).
SECURE = f"""
[default]
bucket = "secure-bucket"
kms_key_id = "{KMS}"
subnets = ["subnet-aaa", "subnet-bbb"]
security_group_ids = ["sg-123"]
network_isolation = true
encrypt_inter_container_traffic = true
[dev]
"""
PURCHASE, DIABETES = "examples/purchase_intent", "tests/fixtures/diabetes/pipeline.py"
# name -> (definition, config file text or None for the project's own, flags)
CONFIGS = {
    "tuning": (PURCHASE, None, {}),
    "training+batch-transform": (PURCHASE, None, {"tuning": False, "batch_transform": True}),
    "secure+tuning": (PURCHASE, SECURE, {"batch_transform": True}),
    "secure+training": (PURCHASE, SECURE, {"tuning": False, "batch_transform": True}),
    "prod+multiclass": (PURCHASE, None, {"env": "prod", "problem_type": "multiclass", "label": "VisitorType"}),
    "diabetes (scikit-learn, entry_point model)": (DIABETES, None, {}),
}


def every_option(image):
    """One step of each type with every option this project writes: DependsOn (on a plain step and
    on a Register step), no retries, no cache, parameters and a step output as hyperparameters and
    container arguments, a training job without metrics, each kind of range, a model and a batch
    transform serving code named by entry_point, a condition on a parameter."""
    from test_images import MODEL_CODE, SCRIPT

    from pipelines.dsl import Categorical, Continuous, Image, Integer, Objective, Pipeline, Report, Sharded

    serving = Image("sklearn", "1.2-1")
    p = Pipeline("options")
    data = p.parameter("Data", "s3://b/in/")
    rounds, rate = p.parameter("Rounds", 3), p.parameter("Rate", 0.5)
    prep = p.processing("Prep", SCRIPT, image=image, inputs={"raw": Sharded(data)}, outputs=["data", "evaluation"],
                        arguments=["--rate", rate, "--rounds", rounds, "--data", data],
                        reports={"evaluation": Report("evaluation", "evaluation.json")},
                        instance_type="ml.m5.large", retries=0, cache=False)
    tune = p.tuning("Tune", MODEL_CODE, image=image, channels={"train": prep.out.data},
                    hyperparameters={"rounds": rounds, "rate": rate, "data": data, "upstream": prep.out.data,
                                     "flag": True, "name": "x"},
                    metrics={"rmse": r"rmse: ([0-9.]+)"}, objective=Objective("rmse", "Minimize"),
                    ranges={"alpha": Continuous(0.1, 1.0), "depth": Integer(1, 5), "kind": Categorical(("a", "b"))},
                    max_jobs=rounds, max_parallel=1, strategy="Bayesian", instance_type="ml.m5.xlarge")
    train = p.training("Train", MODEL_CODE, image=image, channels={"train": prep.out.data}, metrics=(),
                       instance_type="ml.m5.xlarge", after=("Prep",))
    register = p.register("Register", tune.best_model, group="g", report=prep.report("evaluation"), image=serving,
                          entry_point="inference.py", source_dir=MODEL_CODE, description="every option",
                          metadata={"k": "v"}, approval_status="Approved", after=(train,))
    model = p.model("Serve", register.model_data, image=serving, entry_point="inference.py", source_dir=MODEL_CODE,
                    after=("Register",), retries=0)
    score = p.transform("Score", model, data=data, instance_type="ml.m5.large", split_type="Line",
                        assemble_with="None", accept="application/json", content_type="application/json",
                        max_payload_mb=2, after=(register,))
    stop = p.fail("Stop", "rmse", prep.report("evaluation")["rmse"], "is above", rate)
    p.condition("Gate", prep.report("evaluation")["rmse"] < rate, then=[register, model, score], otherwise=[stop])
    return p


def cases() -> dict:
    """name -> (pipeline, config) beside the project's own definitions: processing and training in
    each kind of image, a model with its own code, and every option under each network setting."""
    from test_images import CUSTOM, MODEL_CODE, pipeline

    from pipelines.config import Config
    from pipelines.dsl import Image

    sklearn, cfg = Image("sklearn", "1.2-1"), Config(region=REGION, bucket="b")
    return {
        "pytorch": (pipeline(Image("pytorch", "2.6.0", py_version="py312")), cfg),
        "tensorflow": (pipeline(Image("tensorflow", "2.19.0", py_version="py312")), cfg),
        "huggingface (gpu)": (pipeline(Image("huggingface", "4.56.2", base="pytorch2.8.0", py_version="py312"),
                                       instance_type="ml.g5.xlarge"), cfg),
        "custom image uri": (pipeline(CUSTOM), cfg),
        "scikit-learn, entry_point model": (pipeline(sklearn, register=dict(image=sklearn, entry_point="inference.py",
                                                                            source_dir=MODEL_CODE)), cfg),
        "every option (scikit-learn)": (every_option(sklearn), cfg),
        "every option (pytorch, subnets, KMS)": (every_option(Image("pytorch", "2.6.0", py_version="py312")),
                                                 Config(region=REGION, bucket="b", kms_key_id=KMS, subnets=("s-1",),
                                                        security_group_ids=("sg-1",))),
        "every option (custom image, encryption, no Debugger in the region)": (
            every_option(CUSTOM), Config(region="ap-southeast-3", bucket="b", encrypt_inter_container_traffic=True)),
    }


def compile_all() -> dict:
    """Each case compiled by the project's compiler and by the SDK installed here."""
    from sdk_oracle import compile_with_sdk, installed

    from pipelines import definitions
    from pipelines.compiler import compile_pipeline
    from pipelines.config import load_config

    def settings(path: Path | None, flags: dict, module):
        """A definition's settings, as `deploy.py --config PATH --env ENV --FLAG ...` gives them."""
        env, flags = flags.get("env", "dev"), {k: v for k, v in flags.items() if k != "env"}
        return lambda pipeline: load_config(env, **({"path": path} if path else {}), pipeline=pipeline,
                                            declared=getattr(module, "Settings", None), region=REGION, **flags)

    built = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ref, text, flags) in CONFIGS.items():
            path = Path(tmp) / f"{len(built)}.toml" if text else None
            if path:
                path.write_text(text)
            module = definitions.load(ref)
            built[name] = definitions.build_with_settings(module.definition, settings(path, flags, module))
    built.update(cases())
    return {"sdk": installed()[1], "major": installed()[0],
            "sdk_json": {name: compile_with_sdk(p, cfg) for name, (p, cfg) in built.items()},
            "project_json": {name: compile_pipeline(p, cfg).definition for name, (p, cfg) in built.items()}}


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "processing_scripts"), str(ROOT / "training_scripts")]  # as pytest.ini_options.pythonpath
    json.dump(compile_all(), sys.stdout)
