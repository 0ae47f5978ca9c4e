"""Definition + config -> SageMaker pipeline definition JSON, under SDK v2 or v3.

The only package that imports the SageMaker SDK. `builder` decides every setting of every
step; `v2` and `v3` spell those settings in their SDK's classes; `sdk` finds which one is
installed; `adapter` keeps either from reaching AWS and holds what both spell alike.
"""
from pipelines.compiler.builder import (PLACEHOLDER_ROLE, Compiled, all_steps, code_assets,
                                        compile_pipeline)
from pipelines.compiler.adapter import AwsCallDuringCompile

__all__ = ["PLACEHOLDER_ROLE", "AwsCallDuringCompile", "Compiled", "all_steps", "code_assets", "compile_pipeline"]
