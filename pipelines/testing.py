"""Testing a pipeline the way it runs: on the local runner, in a temporary home.

    from pipelines.testing import run_locally

    def test_my_pipeline(tmp_path):
        run = run_locally("my_pipeline.py", home=tmp_path, input_data="tests/rows.csv",
                          parameters={"MaxRmse": 80.0})
        assert run.succeeded, run.failure_reason
        assert run.steps["Train"].status == "Succeeded"
        assert run.metrics["regression_metrics"]["rmse"]["value"] < 80
        assert run.registered["ModelApprovalStatus"] == "PendingManualApproval"

or, with the `local_pipeline` fixture this module gives pytest (installed with the project):

    def test_my_pipeline(local_pipeline):
        run = local_pipeline("my_pipeline.py", parameters={"MaxRmse": 80.0})

A run goes through the same command layer as `deploy.py run --local`: the definition is found by
path or module, built with its own settings, compiled, its code and data put into the home's
store, run, and reported. Nothing is mocked, so what passes here is what `run --local` does.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from pipelines import commands
from pipelines.commands import Flags, Workspace


@dataclass(frozen=True)
class StepResult:
    """One step of a run, as its record holds it."""

    name: str
    type: str
    status: str  # Succeeded | Failed | NotRun | ...
    cache_hit: bool
    failure_reason: str | None
    arguments: dict  # the request the step made, expressions resolved
    response: dict  # what the matching SageMaker Describe* call would answer

    @property
    def outputs(self) -> dict[str, str]:
        """A processing step's outputs, name -> s3:// URI in the home's store."""
        outputs = (self.response.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        return {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs}


class LocalRun:
    """What one local execution did: statuses, outputs, metrics, registration, and its model to call."""

    def __init__(self, workspace: Workspace, summary: dict):
        self.workspace, self.summary = workspace, summary
        self.record = workspace.target.record(summary["execution_id"])

    def __repr__(self) -> str:
        return f"<LocalRun {self.execution_id} {self.status}: {self.failure_reason or 'no failure'}>"

    @property
    def execution_id(self) -> str:
        return self.record["execution_id"]

    @property
    def status(self) -> str:
        return self.record["status"]

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    @property
    def failure_reason(self) -> str | None:
        return self.record.get("failure_reason")

    @property
    def failed_step(self) -> str | None:
        return self.record.get("failed_step")

    @property
    def home(self):
        """The `pipelines.local.LocalHome` the run kept its store, records and registry in."""
        return self.workspace.home

    @cached_property
    def steps(self) -> dict[str, StepResult]:
        return {s["name"]: StepResult(s["name"], s["type"], s["status"], bool(s.get("cache_hit")),
                                      s.get("failure_reason"), s.get("arguments") or {}, s.get("response") or {})
                for s in self.record["steps"]}

    @property
    def metrics(self) -> dict | None:
        """The first report (property file) the run read, e.g. evaluation.json."""
        return self.summary["metrics"]

    @property
    def gate(self) -> dict | None:
        """The quality gate: the metric path the pipeline's condition reads, its value, operator, threshold, outcome."""
        return self.summary["gate"]

    @property
    def registered(self) -> dict | None:
        """The model package version this run registered (as DescribeModelPackage answers), if any."""
        step = next((s for s in self.steps.values() if s.type == "RegisterModel" and s.status == "Succeeded"), None)
        if step is None:
            return None
        return self.registry.get(step.response["ModelPackageGroupName"], step.response["ModelPackageVersion"])

    @property
    def registry(self):
        """The home's model registry (`pipelines.local.Registry`): list_versions(group), get(group, version), ..."""
        from pipelines.local import Registry

        return Registry.of(self.home)

    @property
    def report(self) -> Path | None:
        return Path(self.record["report"]) if self.record.get("report") else None

    def output(self, step: str, name: str) -> Path:
        """The local folder holding a processing step's output `name`."""
        return self.workspace.target.store.path(self.steps[step].outputs[name])

    def read_json(self, step: str, output: str, file: str):
        """A JSON file a processing step wrote into one of its outputs."""
        return json.loads((self.output(step, output) / file).read_text())

    def predict(self, body: bytes | str, *, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        """Score `body` with the registered model, through SageMaker's serving contract (the handlers
        `serve --local` and batch transform use), without opening a port."""
        from werkzeug.test import Client

        from pipelines.local import endpoint

        package = self.registered
        if package is None:
            raise AssertionError(f"run {self.execution_id} registered no model ({self.failure_reason or self.status})")
        root = self.home.root / "test-endpoints" / f"v{package['ModelPackageVersion']}"
        app = self._apps.get(root) or self._apps.setdefault(root, endpoint.load_app(self.workspace.target.store,
                                                                                    package, root))
        data = body.encode() if isinstance(body, str) else body
        response = Client(app).post("/invocations", data=io.BytesIO(data).read(),
                                    headers={"Content-Type": content_type, "Accept": accept})
        if response.status_code != 200:
            raise AssertionError(f"/invocations answered {response.status_code}: {response.get_data(as_text=True)}")
        return response.get_data()

    @cached_property
    def _apps(self) -> dict:
        return {}


def run_locally(definition: str | Path, *, home: str | Path, parameters: dict | None = None,
                input_data: str | Path | None = None, env: str = "dev", resume: str | None = None,
                job_env: str | None = None, max_parallel_steps: int = 4, **settings) -> LocalRun:
    """Run `definition` (a .py path or a dotted module) on the local runner in `home`; the run.

    `parameters` override the pipeline's parameters (checked against their types); `input_data` is a
    local file or s3:// URI for InputData; `job_env` is "image" (jobs get their image's package
    versions) or "host" (this Python; default: $PIPELINES_JOB_ENV, else "image"); `settings` are what
    deploy.py's flags set: the framework's (bucket=..., region=...) and the definition's own (label=...,
    tuning=False). A failed run is
    returned, not raised: assert on it. With `resume`, the execution's recorded definition runs again
    (as `run --resume` does), so `definition` only names the pipeline for the reader."""
    framework = {k: settings.pop(k) for k in ("region", "role_arn", "bucket", "config") if k in settings}
    if not resume:
        framework["definition"] = str(definition)
    workspace = Workspace(Flags(env=env, home=str(home), local=True, settings=tuple(settings.items()), **framework))
    summary = commands.run(workspace, commands.RunOptions(
        parameters=[f"{k}={v}" for k, v in (parameters or {}).items()],
        input_data=str(input_data) if input_data else None, resume=resume, job_env=job_env,
        max_parallel_steps=max_parallel_steps))
    return LocalRun(workspace, summary)


@pytest.fixture
def local_pipeline(tmp_path):
    """`local_pipeline(definition, **options)`: `run_locally` in this test's own temporary home
    (one home per test, so a second run sees the first one's cache and registry)."""
    home = tmp_path / "local-pipelines"

    def run(definition, **options) -> LocalRun:
        return run_locally(definition, home=home, **options)

    return run
