"""The definitions compared across SDK v2 and v3: every step type, every framework image, model
code named by entry_point, with and without the security settings. Imported by
tests/test_same_json.py, and run as a script under the other SDK's interpreter (v2 and v3
cannot share an environment):

    python tests/sdk_matrix.py     # {"sdk": "...", "major": N, "definitions": {name: definition JSON}}
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


def images() -> dict:
    """name -> pipeline: processing and training in each kind of image, a model with its own code."""
    from test_images import CUSTOM, MODEL_CODE, pipeline

    from pipelines.dsl import Image

    sklearn = Image("sklearn", "1.2-1")
    return {
        "pytorch": pipeline(Image("pytorch", "2.6.0", py_version="py312")),
        "tensorflow": pipeline(Image("tensorflow", "2.19.0", py_version="py312")),
        "huggingface (gpu)": pipeline(Image("huggingface", "4.56.2", base="pytorch2.8.0", py_version="py312"),
                                      instance_type="ml.g5.xlarge"),
        "custom image uri": pipeline(CUSTOM),
        "scikit-learn, entry_point model": pipeline(sklearn, register=dict(image=sklearn, entry_point="inference.py",
                                                                           source_dir=MODEL_CODE)),
    }


def compile_all() -> dict:
    """Each configuration's definition JSON, compiled by the SDK installed here."""
    from pipelines import definitions
    from pipelines.compiler import compile_pipeline
    from pipelines.compiler.sdk import installed
    from pipelines.config import Config, load_config

    def settings(path: Path | None, flags: dict):
        """A definition's settings, as `deploy.py --config PATH --env ENV --FLAG ...` gives them."""
        env, flags = flags.get("env", "dev"), {k: v for k, v in flags.items() if k != "env"}
        return lambda pipeline: load_config(env, **({"path": path} if path else {}), pipeline=pipeline,
                                            region=REGION, **flags)

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ref, text, flags) in CONFIGS.items():
            path = Path(tmp) / f"{len(out)}.toml" if text else None
            if path:
                path.write_text(text)
            pipeline, cfg = definitions.build_with_settings(definitions.load(ref).definition, settings(path, flags))
            out[name] = compile_pipeline(pipeline, cfg).definition
        for name, pipeline in images().items():
            out[name] = compile_pipeline(pipeline, Config(region=REGION, bucket="b")).definition
    return {"sdk": installed()[1], "major": installed()[0], "definitions": out}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    json.dump(compile_all(), sys.stdout)
