"""The definitions compared across SDK v2 and v3: every step type, with and without the
security settings. Imported by tests/test_same_json.py, and run as a script under the other
SDK's interpreter (v2 and v3 cannot share an environment):

    python tests/sdk_matrix.py     # {"sdk": "...", "definitions": {name: definition JSON}}
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
label = "Revenue"
[dev]
"""
# name -> (config file text or None for the project's own, flags)
CONFIGS = {
    "tuning": (None, {}),
    "training+batch-transform": (None, {"tuning": False, "batch_transform": True}),
    "secure+tuning": (SECURE, {"batch_transform": True}),
    "secure+training": (SECURE, {"tuning": False, "batch_transform": True}),
    "prod+multiclass": (None, {"env": "prod", "problem_type": "multiclass", "label": "VisitorType"}),
}


def compile_all() -> dict:
    """Each configuration's definition JSON, compiled by the SDK installed here."""
    from pipelines.compiler import compile_pipeline
    from pipelines.compiler.sdk import installed
    from pipelines.config import load_config
    from pipelines.purchase_intent import definition

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (text, flags) in CONFIGS.items():
            flags = dict(flags)
            path = None
            if text:
                path = Path(tmp) / f"{name}.toml"
                path.write_text(text)
            cfg = load_config(flags.pop("env", "dev"), **({"path": path} if path else {}), region=REGION, **flags)
            out[name] = compile_pipeline(definition(cfg), cfg).definition
    return {"sdk": installed()[1], "major": installed()[0], "definitions": out}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    json.dump(compile_all(), sys.stdout)
