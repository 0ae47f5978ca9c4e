"""Where pipelines run and models live: one interface, two implementations.

    Target                 what every command asks of the place it acts on
    ├── SageMakerTarget    pipelines.targets.sagemaker: SageMaker and S3 through boto3 (pipelines.cloud,
    │                      .executions, .endpoints)
    └── LocalTarget        pipelines.targets.local: the local runner, its home, store and registry
                           (pipelines.local)

A `Workspace` picks one (`--local` picks the local one) and the commands call it without asking
which, as ZenML's orchestrators and KFP's local task handlers sit behind one interface. What a
target cannot do it refuses in its own words (SageMaker has no `--resume`; the local runner has no
pipeline to upsert). Executions and model versions come back in the same shapes from both: an
execution as a *view* (`pipelines.history`), a model package as DescribeModelPackage answers it.
"""
from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator


class UserError(ValueError):
    """Bad input to a command, reported without a traceback."""


def program() -> str:
    """How the user called us, for the commands a hint spells out: the console script or deploy.py."""
    return "ml-pipelines" if Path(sys.argv[0]).name == "ml-pipelines" else "python deploy.py"


@dataclass
class RunRequest:
    """One execution to start: compiled (or given as JSON, or recorded) definition, parameters, and
    how to run it. Fields a target cannot honour are refused by that target, naming the flag."""

    pipeline_name: str
    definition: str | None = None  # the definition JSON; None with `resume`
    assets: dict[str, bytes] = field(default_factory=dict)  # code bundles the definition names
    parameters: dict[str, Any] = field(default_factory=dict)  # overrides, typed
    display_name: str | None = None  # the pipeline's, for SageMaker
    description: str | None = None  # the pipeline's, for SageMaker and the report
    tags: dict[str, str] = field(default_factory=dict)
    role_arn: str | None = None  # the pipeline's execution role (SageMaker)
    source: str | None = None  # selective execution: the execution the other steps' outputs come from
    steps: list[str] = field(default_factory=list)  # ... and the steps to run
    resume: str | None = None  # finish this execution as it was recorded (local)
    stage: list[str] = field(default_factory=list)  # s3://bucket/key=LOCAL_PATH, put into the store first (local)
    job_env: str | None = None  # image or host (local)
    max_parallel_steps: int = 4  # (local)
    keep_trials: bool = False  # keep the folders of a tuning step's losing trials (local)
    origin: dict = field(default_factory=dict)  # what built it: definition, config file, settings, flags
    on_event: Callable[[dict], None] | None = None  # progress


class Target(ABC):
    """The place commands act on. `flags` are the command-line flags that name it, so every hint a
    command gives carries them (`--local --home DIR`, or nothing for SageMaker)."""

    name: str
    flags: tuple[str, ...] = ()

    def hint(self, *words: str) -> str:
        """A command line for the user to type next: `python deploy.py WORDS --local --home DIR`."""
        return " ".join([program(), *words, *self.flags])

    # -- code and data ------------------------------------------------------------------------------

    @abstractmethod
    def stage_input(self, path_or_uri: str, root: str, *, flag: str = "--input-data") -> str:
        """A local file or folder put where jobs read it (`pipelines.inputs`); an s3:// URI as it is."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether an object is at `uri`."""

    @abstractmethod
    def put_file(self, uri: str, path: Path) -> None:
        """Put a local file at `uri`."""

    @abstractmethod
    def read(self, uri: str) -> bytes | None:
        """The object at `uri`, or None when it cannot be read (what `compare` shows of code bundles)."""

    @abstractmethod
    def upsert(self, name: str, definition: str, assets: dict[str, bytes], *, role_arn: str | None,
               display_name: str | None = None, description: str | None = None,
               tags: dict[str, str] | None = None) -> str:
        """Put the code bundles where jobs read them and create or update the pipeline; what to tell the user
        (SageMaker: the pipeline's ARN; locally nothing: the runner runs the definition it is given)."""

    # -- executions ---------------------------------------------------------------------------------

    @abstractmethod
    def start(self, request: RunRequest) -> str:
        """Start an execution (the local runner runs it to its end); its reference (an ARN, or an id)."""

    @abstractmethod
    def wait(self, execution: str, *, timeout: float, poll: float, on_event: Callable[[dict], None] | None) -> dict:
        """The execution's summary once it has ended (`summary`)."""

    @abstractmethod
    def summary(self, execution: str) -> dict:
        """What a person or a script wants to know of an execution: status, steps, gate, registered
        version, metrics, report (the document `run --json` prints)."""

    @abstractmethod
    def views(self, pipeline_name: str | None, last: int) -> list[dict]:
        """The newest executions (of `pipeline_name`; locally, of every pipeline), newest first, as views."""

    @abstractmethod
    def view(self, execution: str, pipeline_name: str | None) -> dict:
        """One execution as a view: its id or ARN, or `latest`."""

    @abstractmethod
    def logs(self, execution: str, step: str | None, *, follow: bool, pipeline_name: str | None) -> Iterator[str]:
        """The log lines of an execution's jobs (one step's or one job's), a header before each log."""

    @abstractmethod
    def stop(self, execution: str) -> str:
        """Ask an execution to stop; what became of it, in a line."""

    @abstractmethod
    def origin(self, execution: str) -> dict:
        """What built an execution (definition, config file, settings, flags), as it recorded it; {} if unknown."""

    # -- registered models --------------------------------------------------------------------------

    @abstractmethod
    def groups(self, names: list[str] | None, last: int) -> list[dict]:
        """Model package groups (those of `names`, or all) with their newest versions, oldest first."""

    @abstractmethod
    def latest_groups(self) -> tuple[list[str], str]:
        """The groups of what was made last here, and what that was, in words: what commands act on
        when nothing names a group."""

    @abstractmethod
    def package(self, group: str, ref: str, *, approved: bool = False) -> dict:
        """The version `ref` names in `group` (a number, latest, latest-approved, an ARN); with
        `approved`, refused unless it is Approved (what deployments and batch transforms take)."""

    @abstractmethod
    def set_approval(self, group: str, ref: str, status: str, description: str | None = None) -> dict:
        """Approve or reject a version; the version afterwards."""

    @abstractmethod
    def deploy(self, package: dict, *, endpoint_name: str, instance_type: str, instance_count: int,
               role_arn: str | None, tags: dict[str, str], wait: bool) -> tuple[dict, str]:
        """Point an endpoint at `package` through a new endpoint config: (what was done, what next)."""

    @abstractmethod
    def serve(self, package: dict | None, *, endpoint_name: str | None, host: str, port: int,
              max_payload_mb: float, say: Callable[[str], None]) -> None:
        """Serve a version over HTTP until stopped (`package`, or what `endpoint_name` serves)."""

    @abstractmethod
    def endpoint_package(self, endpoint_name: str) -> str:
        """The model package ARN an endpoint serves."""

    @abstractmethod
    def predict(self, body: bytes, *, endpoint_name: str | None, url: str, content_type: str, accept: str) -> bytes:
        """Score rows with an endpoint; the response body."""

    @abstractmethod
    def prune(self, *, keep: int, older_than: str | None, dry_run: bool) -> dict:
        """Free what runs left behind: {"items": [(what, path, bytes, execution)], "kept": {execution:
        why}, "freed": bytes}; with `dry_run`, nothing is deleted."""

    @abstractmethod
    def batch_transform(self, package: dict, *, input_path: str, output: str | None, root: str, instance_type: str,
                        role_arn: str | None, tags: dict[str, str], wait: bool,
                        say: Callable[[str], None]) -> dict:
        """Score a file or prefix with `package`: the job, with `Output` (where the results are)."""
