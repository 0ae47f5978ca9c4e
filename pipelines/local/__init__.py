"""The local runner: runs SageMaker pipeline definition JSON offline (no Docker, no AWS).

    record = run_pipeline(definition_json, pipeline_name="p", home=LocalHome.default())

Names are imported on first use (PEP 562), so a command that only reads a home (or refuses bad input
before running anything) does not pay for the runner's imports (boto3, werkzeug, the job machinery).
"""
from importlib import import_module

_EXPORTS = {
    "ExpressionError": "pipelines.local.expressions",
    "LocalHome": "pipelines.local.home",
    "Registry": "pipelines.local.registry",
    "RunError": "pipelines.local.plan",
    "open_store": "pipelines.local.storage",
    "run_pipeline": "pipelines.local.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
