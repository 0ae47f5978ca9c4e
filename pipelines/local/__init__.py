"""The local runner: runs SageMaker pipeline definition JSON offline (no Docker, no AWS).

    record = run_pipeline(definition_json, pipeline_name="p", home=LocalHome.default())
"""
from pipelines.local.expressions import ExpressionError
from pipelines.local.home import LocalHome
from pipelines.local.plan import RunError
from pipelines.local.registry import Registry
from pipelines.local.runner import run_pipeline
from pipelines.local.storage import open_store

__all__ = ["ExpressionError", "LocalHome", "Registry", "RunError", "open_store", "run_pipeline"]
