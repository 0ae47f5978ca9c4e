"""The SageMaker SDKs as test oracles: the project's definitions compiled by SDK v2 or v3
(whichever is installed), to compare with what `pipelines.compiler` writes itself.

Test code only: nothing under `pipelines/` imports it, and the project compiles without the SDK.
"""
from sdk_oracle.builder import compile_with_sdk
from sdk_oracle.sdk import SdkError, installed

__all__ = ["SdkError", "compile_with_sdk", "installed"]
