"""Definition + config -> SageMaker pipeline definition JSON, written by the project itself.

`builder` decides every setting of every step and writes the definition (`pipelines.spec`);
`requests` spells SageMaker's request shapes; `images` holds the framework images' URIs. No
SageMaker SDK on this path: tests/sdk_oracle compiles the same definitions with SDK v2 and v3
and tests/test_same_json.py compares.
"""
from pipelines.compiler.builder import PLACEHOLDER_ROLE, Compiled, code_assets, compile_pipeline

__all__ = ["PLACEHOLDER_ROLE", "Compiled", "code_assets", "compile_pipeline"]
