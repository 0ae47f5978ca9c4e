"""The commands behind deploy.py: the one layer between the command line and the targets.

    deploy.py -> pipelines.cli (parse flags, print) -> pipelines.commands (this module)
              -> a target (pipelines.targets): SageMaker, or the local runner and its home

Here settings become actions: load the config, build and compile the definition, check parameter
overrides and input data, then call the `Target` the workspace picked, which never asks which one it
is. Nothing here parses flags or prints (progress goes through the `say` callback of a `Workspace`),
and no target imports this module, so the local runner stays an interpreter of JSON. A new command
is one function here taking a `Workspace`, plus its flags and printing in `pipelines.cli`.

Commands act on what the user just made, and say so: the model package group is the one `--group`
names, else the one the flags and definition name, else the one of the latest run of the target;
`--from` and `--resume` rebuild from the settings the execution recorded.
"""
from __future__ import annotations

import dataclasses
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from pipelines import definitions, dsl, history, spec
from pipelines import settings as declared_settings
from pipelines.config import ConfigError, aws_region, load_config, project_file
from pipelines.targets import RunRequest, Target, UserError, program

__all__ = ["DEFAULT_DEFINITION", "Flags", "UserError", "Workspace"]

DEFAULT_DEFINITION = "pipelines.tabular"  # the product's pipeline, loaded by name as any user's is
DEFAULT_REGION = "us-east-1"  # image URIs are regional; compile needs one even offline
PRODUCT_PREFIX = "ml-pipelines"  # where what belongs to no pipeline goes: scoring input, transform output


def user_errors() -> tuple[type[Exception], ...]:
    """What deploy.py reports as a one-line refusal (exit 2): every layer's own "your input is wrong".
    A target's errors are looked up only where its module was imported (else none of them was raised), so
    a refusal costs no import of a target the command did not use."""
    from pipelines.inputs import InputError

    found = [ConfigError, dsl.DefinitionError, UserError, InputError]
    for module, name in (("pipelines.local.plan", "RunError"), ("pipelines.local.endpoint", "LocalEndpointError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def cloud_errors() -> tuple[type[Exception], ...]:
    """What deploy.py reports as a one-line failure of SageMaker (exit 1)."""
    from pipelines.cloud import CloudError

    return (CloudError,)


@dataclass(frozen=True)
class Flags:
    """The flags every command shares; None means "as the config files say". `settings` are the
    definition's own (`pipelines.settings`) as given: by `-s NAME=VALUE` or the flags it declares."""

    env: str = "dev"
    region: str | None = None
    role_arn: str | None = None
    bucket: str | None = None
    settings: tuple[tuple[str, object], ...] = ()
    named: tuple[str, ...] = ()  # the settings given with -s NAME=VALUE (the others by the definition's flags)
    definition: str | None = None  # None: the default definition (not named by the user)
    home: str | None = None
    config: str | None = None  # the project's settings file; default ./ml-pipelines.toml where it exists
    local: bool = False  # the local runner and its home, rather than SageMaker

    @classmethod
    def of(cls, namespace, declared: type | None = None) -> Flags:
        """The flags among a namespace's attributes (argparse's), the rest at their defaults; with the
        definition's `declared` settings, those its flags set and those of `-s NAME=VALUE`."""
        given = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)
                 if f.name not in ("settings", "named") and getattr(namespace, f.name, None) is not None}
        values = {name: getattr(namespace, name) for name in declared_settings.options(declared)
                  if getattr(namespace, name, None) is not None}
        named = []
        for pair in getattr(namespace, "set", None) or []:
            name, sep, value = pair.partition("=")
            if not sep:
                raise UserError(f"-s {pair!r}: write a setting as NAME=VALUE")
            values[name.replace("-", "_")] = value
            named.append(name.replace("-", "_"))
        return cls(**given, settings=tuple(values.items()), named=tuple(named))

    @property
    def shaping(self) -> dict[str, object]:
        """What shapes the compiled definition, as given: the definition, the framework's flags that reach
        it and the definition's own settings (what an execution records, and `--from` re-applies)."""
        framework = {k: getattr(self, k) for k in ("region", "bucket", "role_arn") if getattr(self, k) is not None}
        return {**({"definition": self.definition} if self.definition else {}), **framework, **dict(self.settings)}


class Workspace:
    """What one command works with, each made once, on first use: the definition built with its own
    settings, its compiled JSON, the target (SageMaker, or the local home) and its clients."""

    def __init__(self, flags: Flags = Flags(), *, say: Callable[[str], None] = lambda line: None):
        self.flags, self.say = flags, say

    @property
    def definition(self) -> str:
        return self.flags.definition or DEFAULT_DEFINITION

    def settings_for(self, pipeline: str | None):
        """The config files' settings of `pipeline` (None: of no pipeline in particular, while the
        definition is asked its name), the definition's own settings included, then the flags."""
        f = self.flags
        return load_config(f.env, project_file(f.config), pipeline=pipeline, declared=self.declared, region=f.region,
                           role_arn=f.role_arn, bucket=f.bucket, given_as={name: f"-s {name}" for name in f.named},
                           **dict(f.settings))

    @cached_property
    def environment(self):
        """The settings of the environment alone (region, bucket, ...): what commands that build no
        definition read."""
        f = self.flags
        cfg = load_config(f.env, project_file(f.config), region=f.region, role_arn=f.role_arn, bucket=f.bucket)
        return cfg if cfg.region else cfg.replace(region=self._default_region)

    @cached_property
    def _default_region(self) -> str:
        return aws_region() or DEFAULT_REGION

    @cached_property
    def module(self):
        """The definition's module (`--definition`: a file path, a folder or a dotted module name)."""
        return definitions.load(self.definition)

    @cached_property
    def declared(self) -> type | None:
        """The definition's `Settings` class, if it declares one."""
        return declared_settings.declared(self.module)

    @cached_property
    def _built(self):
        return definitions.build_with_settings(self.module.definition, self.settings_for)

    @property
    def pipeline(self) -> dsl.Pipeline:
        return self._built[0]

    @property
    def config(self):
        """The settings of the definition's pipeline."""
        return self._built[1]

    @cached_property
    def pipeline_name(self) -> str:
        """The definition's pipeline name, asked without building the rest (which may need settings)."""
        return definitions.pipeline_name(self.module.definition, self.settings_for(None))

    def compiled(self, cfg=None):
        """The definition compiled with its settings, or built anew with `cfg` and compiled."""
        from pipelines.compiler import compile_pipeline

        pipeline = self.pipeline if cfg is None else definitions.build(self.module.definition, cfg)
        cfg = cfg or self.config
        cfg = cfg if cfg.region else cfg.replace(region=self._default_region)  # asked only when compiling
        return compile_pipeline(pipeline, cfg)

    @cached_property
    def home(self):
        from pipelines.local.home import LocalHome

        return LocalHome(Path(self.flags.home)) if self.flags.home else LocalHome.default()

    @cached_property
    def target(self) -> Target:
        """The local runner and its home with --local, else SageMaker in the configured region."""
        if self.flags.local:
            from pipelines.targets.local import LocalTarget

            return LocalTarget(self.home, home_given=bool(self.flags.home))
        from pipelines.targets.sagemaker import SageMakerTarget

        return SageMakerTarget(self.environment.region)

    @property
    def root(self) -> str:
        """Where what belongs to no one pipeline goes (scoring input, transform output): s3://<bucket>/ml-pipelines."""
        return f"s3://{self.environment.artifact_bucket}/{PRODUCT_PREFIX}"

    def group(self, given: str | None = None) -> str:
        """The model package group a command acts on, said: `--group`; else the group the definition's
        RegisterModel step registers into, when flags name the definition or its settings; else the
        group of what was made last (the latest run, locally). Two groups that could be meant are refused."""
        if given:
            return given
        if self.flags.definition or self.flags.settings:
            compiled = self.compiled()
            groups, source = history.registered_groups(spec.read(compiled.definition)), f"pipeline {compiled.name}"
        else:
            groups, source = self.target.latest_groups()
        if len(groups) == 1:
            self.say(f"model package group {groups[0]}: of {source}")
            return groups[0]
        if groups:
            raise UserError(f"{source} registers into groups {', '.join(groups)}: name one with "
                            f"--group NAME (`{self.target.hint('models', '--all')}` lists them)")
        raise UserError(f"{source} registers no model: name the model package group with --group NAME "
                        f"(`{self.target.hint('models', '--all')}` lists them)")




# --- inputs of a run ----------------------------------------------------------------------------


def parse_overrides(parameters: dict[str, dsl.Parameter], pairs: list[str]) -> dict:
    """`Name=Value` pairs checked against the pipeline's parameters before any call is made."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"-p {pair!r}: write parameters as Name=Value")
        if name not in parameters:
            raise UserError(f"-p {pair!r}: the pipeline has no parameter {name!r}; "
                            f"its parameters are {', '.join(parameters)}")
        out[name] = parameters[name].coerce(value)
    return out


def scoring_follows_input(parameters: dict, overrides: dict) -> dict:
    """ScoringData (with --batch-transform) defaults to the input data, also when that is overridden."""
    if "ScoringData" in parameters and "InputData" in overrides and "ScoringData" not in overrides:
        overrides["ScoringData"] = overrides["InputData"]
    return overrides


# --- executions ---------------------------------------------------------------------------------


@dataclass
class RunOptions:
    """What `run` and `start` are asked beyond the workspace's flags."""

    parameters: list[str] = dataclasses.field(default_factory=list)  # -p Name=Value
    input_data: str | None = None
    source: str | None = None  # --from
    steps: list[str] = dataclasses.field(default_factory=list)
    resume: str | None = None
    definition_json: str | None = None
    stage: list[str] = dataclasses.field(default_factory=list)
    job_env: str | None = None
    max_parallel_steps: int = 4
    keep_trials: bool = False
    wait: bool = True
    upsert: bool = True
    timeout: float = 6 * 3600
    poll: float = 15.0
    on_event: Callable[[dict], None] | None = None
    on_started: Callable[[str], None] | None = None  # told the execution's id or ARN as soon as it has one


def run(ws: Workspace, options: RunOptions) -> dict:
    """Build, stage, upsert, start and (unless told not to) wait for one execution on the workspace's
    target; its summary (`history.summary`), with `next`, the commands to type next. `--from` and
    `--resume` rebuild from the settings that execution recorded (`rebuilt`)."""
    if bool(options.source) != bool(options.steps):
        raise UserError("--from EXECUTION and --steps STEP[,STEP] go together: which steps to run again, "
                        "reusing which execution's other outputs")
    target = ws.target
    if options.resume:
        _refuse_with_resume(options)
        ws = rebuilt(ws, options.resume, resuming=True)
        ws.say(_resuming(ws, options.resume))
        request = RunRequest(pipeline_name="", resume=options.resume, origin={})
    elif options.definition_json:
        request = _request_from_json(ws, options)
    else:
        if options.source:
            ws = rebuilt(ws, options.source)
        request = _request_from_definition(ws, options)
    request.stage, request.job_env = list(options.stage), options.job_env
    request.max_parallel_steps, request.on_event = options.max_parallel_steps, options.on_event
    request.keep_trials = options.keep_trials
    if options.upsert and request.definition:
        said = target.upsert(request.pipeline_name, request.definition, request.assets, role_arn=request.role_arn,
                             display_name=request.display_name, description=request.description, tags=request.tags)
        if said:
            ws.say(said)
    execution = target.start(request)
    if options.on_started:
        options.on_started(execution)
    if not options.wait:
        return {"execution_id": execution, "status": "Executing"}
    summary = target.wait(execution, timeout=options.timeout, poll=options.poll, on_event=options.on_event)
    summary["failure_reason"] = _in_users_words(summary.get("failure_reason"), request.origin.get("staged") or {})
    return {**summary, "next": next_commands(ws, summary)}


def _request_from_definition(ws: Workspace, options: RunOptions) -> RunRequest:
    """The compiled definition with checked overrides and its input data staged; nothing recorded yet."""
    check = getattr(ws.module, "check_input", None)
    local_input = options.input_data and not options.input_data.startswith("s3://")
    if check and local_input:
        check(Path(options.input_data), ws.config)  # the header and first rows, in the user's words, before anything
    compiled = ws.compiled()
    overrides = parse_overrides(compiled.parameters, options.parameters)
    staged = {}
    if options.input_data:
        overrides["InputData"] = ws.target.stage_input(options.input_data, f"{ws.config.s3_root}/data")
        if local_input:
            staged[overrides["InputData"]] = options.input_data
    elif "InputData" in compiled.parameters and "InputData" not in overrides and not options.source:
        _put_example_data(ws, compiled.parameters["InputData"].default)
    scoring_follows_input(compiled.parameters, overrides)
    origin = {"definition": _definition_ref(ws.definition), "config": _config_ref(ws.flags.config),
              "env": ws.flags.env, "flags": ws.flags.shaping, "settings": declared_settings.as_dict(ws.config.settings),
              **({"staged": staged} if staged else {})}
    return RunRequest(pipeline_name=compiled.name, definition=compiled.definition, assets=compiled.assets,
                      parameters=overrides, display_name=compiled.display_name, description=compiled.description,
                      tags=compiled.tags, role_arn=ws.config.role_arn, source=options.source,
                      steps=list(options.steps), origin=origin)


def _request_from_json(ws: Workspace, options: RunOptions) -> RunRequest:
    """A definition JSON written by anything, run as it is: -p values are typed by its own Parameters."""
    path = Path(options.definition_json)
    if not path.is_file():
        raise UserError(f"--definition-json {path}: no such file")
    malformed = [pair for pair in options.parameters if "=" not in pair]
    if malformed:
        raise UserError(f"-p {malformed[0]!r}: write parameters as Name=Value")
    return RunRequest(pipeline_name=path.stem, definition=path.read_text(),
                      parameters=dict(pair.partition("=")[::2] for pair in options.parameters),
                      role_arn=ws.environment.role_arn, source=options.source, steps=list(options.steps),
                      origin={"definition_json": str(path.resolve())})


def _definition_ref(ref: str) -> str:
    """A definition as recorded: a path made absolute (a run may be repeated from elsewhere), a module as it is."""
    path = Path(ref)
    return str(path.resolve()) if path.exists() else ref


def _config_ref(given: str | None) -> str | None:
    found = project_file(given)
    return str(found.resolve()) if found else None


def rebuilt(ws: Workspace, execution: str, *, resuming: bool = False) -> Workspace:
    """The workspace of what built `execution` (its recorded definition, config file, environment and
    settings), with today's code; a flag given now that contradicts the record is refused, naming both."""
    origin = ws.target.origin(execution)
    if not origin or "definition_json" in origin:
        return ws  # an execution of an earlier version, or of a JSON file: the flags alone
    recorded = dict(origin.get("flags") or {})
    settings = {**(origin.get("settings") or {}), **{k: v for k, v in recorded.items()
                                                       if k not in ("definition", "region", "bucket", "role_arn")}}
    now = ws.flags
    conflicts = []
    if now.definition and _definition_ref(now.definition) != origin.get("definition"):
        conflicts.append(("--definition", now.definition, origin.get("definition")))
    for name in ("region", "bucket", "role_arn"):
        if getattr(now, name) is not None and name in recorded and getattr(now, name) != recorded[name]:
            conflicts.append((f"--{name.replace('_', '-')}", getattr(now, name), recorded[name]))
    if now.env != origin.get("env", now.env):
        conflicts.append(("--env", now.env, origin["env"]))
    for name, value in now.settings:
        if name in settings and not _same(value, settings[name]):
            conflicts.append((f"--{name.replace('_', '-')}", value, settings[name]))
        elif resuming and name not in settings:
            raise UserError(f"-s {name}={value} would be ignored: --resume reruns execution {execution} as it was "
                            f"recorded; to change its settings, start a new run")
    if conflicts:
        flag, given, was = conflicts[0]
        how = "--resume reruns it as it was recorded" if resuming else \
            f"--from {execution} re-runs steps of it with its settings"
        raise UserError(f"{flag} {given} contradicts execution {execution}, which ran with {flag} {was}: {how}; "
                        f"drop {flag}, or start a new run to change it")
    framework = {k: recorded[k] for k in ("region", "bucket", "role_arn") if k in recorded}
    flags = dataclasses.replace(
        now, definition=now.definition or origin.get("definition"), config=now.config or origin.get("config"),
        env=origin.get("env", now.env), settings=tuple({**settings, **dict(now.settings)}.items()),
        **{k: getattr(now, k) or v for k, v in framework.items()})
    ws.say(f"execution {execution} was built from {flags.definition}"
           + (f" with {', '.join(f'{k}={v}' for k, v in dict(flags.settings).items() if k in dict(recorded))}"
              if any(k in recorded for k in dict(flags.settings)) else "")
           + ": the same settings again")
    return Workspace(flags, say=ws.say)


def _same(given, recorded) -> bool:
    return str(given).lower() == str(recorded).lower() if isinstance(recorded, bool) else str(given) == str(recorded)


def _refuse_with_resume(options: RunOptions) -> None:
    """--resume reruns the recorded definition with the recorded parameters: a flag that would change
    either is refused rather than silently ignored, with the command that does honour it."""
    flags = {"parameters": "-p", "input_data": "--input-data", "definition_json": "--definition-json",
             "source": "--from"}
    ignored = [flag for name, flag in flags.items() if getattr(options, name)]
    if ignored:
        raise UserError(f"--resume {options.resume} reruns its recorded definition and parameters, so "
                        f"{', '.join(ignored)} would be ignored: to run today's definition on its outputs, "
                        f"use --from {options.resume} --steps STEP[,STEP] instead")


def _resuming(ws: Workspace, execution_id: str) -> str:
    """What --resume is about to do, said before it does it."""
    try:
        view = ws.target.view(execution_id, None)
    except UserError:
        return f"resuming execution {execution_id}"  # the runner refuses it with the reason
    if view["status"] == "Succeeded":
        raise UserError(f"execution {execution_id} succeeded: there is nothing to resume (run steps of it again "
                        f"with --from {execution_id} --steps STEP[,STEP])")
    again = [s["name"] for s in view["steps"] if s["status"] != "Succeeded"]
    return (f"resuming execution {execution_id} ({view['status']}) with its recorded definition and parameters: "
            f"{', '.join(again)} may run again, what succeeded is kept; for today's code use --from {execution_id} "
            f"--steps ...")


def _put_example_data(ws: Workspace, uri: str) -> None:
    """InputData's default, when the target lacks it and the definition's module can write it
    (`example_data(dest: Path) -> Path`): the data a run needs no --input-data for."""
    write = getattr(ws.module, "example_data", None)
    if write is None or ws.target.exists(uri):
        return
    ws.say(f"writing the example data of {ws.pipeline.name} -> {uri}")
    with tempfile.TemporaryDirectory() as tmp:
        ws.target.put_file(uri, write(Path(tmp) / uri.rsplit("/", 1)[-1]))


def _in_users_words(reason: str | None, staged: dict[str, str]) -> str | None:
    """A job's failure with the container's view of staged input (`/opt/ml/processing/input/raw/x.csv`, or
    the job folder standing in for /opt/ml) put back as the path the user gave."""
    if not reason:
        return reason
    for uri, path in staged.items():
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        inside = r"(?:/opt/ml|\S*/algo-\d+)/processing/input/[^/\s'\"]+/"
        if Path(path).is_dir():
            reason = re.sub(inside, lambda _: f"{path.rstrip('/')}/", reason)
        else:
            reason = re.sub(inside + re.escape(name) + r"\b", lambda _: path, reason)
    return reason


def next_commands(ws: Workspace, summary: dict) -> list[str]:
    """What to type next after a run, with every flag it needs."""
    target, execution = ws.target, summary["execution_id"]
    registered = summary.get("registered_model")
    if summary["status"] == "Failed" and summary.get("failed_step"):
        return [target.hint("logs", execution, summary["failed_step"]),
                *([target.hint("run", "--resume", execution)] if ws.flags.local else [])]
    if summary["status"] == "Stopped":
        return [target.hint("run", "--resume", execution)]
    if not registered:
        return [" ".join([program(), "report", execution, *target.flags[1:]])] if ws.flags.local else []
    group, version = registered["ModelPackageGroupName"], str(registered["ModelPackageVersion"])
    pick = ("--group", group, "--model-package", version)
    lines = [target.hint("approve", version, "--group", group)]
    if ws.flags.local:
        lines += [target.hint("serve", *pick) + " &", " ".join([program(), "predict", "--local", "< rows.csv"])]
    else:
        lines += [target.hint("deploy-endpoint", *pick), target.hint("predict", "--endpoint", "NAME") + " < rows.csv"]
    lines.append(target.hint("batch-transform", *pick, "--input", "rows.csv"))
    return lines


def diff(ws: Workspace) -> tuple[str, list[str] | None]:
    """(pipeline name, step-by-step differences deployed -> compiled: empty when up to date, None when
    nothing is deployed under that name, where a diff would only list every line of the definition)."""
    from pipelines import cloud

    cfg = ws.config
    target = ws.target
    current = cloud.deployed(target.sm, cfg.pipeline_name)
    if current is None:
        return cfg.pipeline_name, None
    if not cfg.role_arn and current.get("RoleArn"):  # compare like with like, not with the placeholder role
        cfg = cfg.replace(role_arn=current["RoleArn"])
    compiled = ws.compiled(cfg)
    return compiled.name, cloud.diff(current.get("PipelineDefinition"), compiled.definition)


def upsert(ws: Workspace) -> str:
    """Upload the code and create or update the pipeline; its ARN."""
    compiled, cfg = ws.compiled(), ws.config
    return ws.target.upsert(compiled.name, compiled.definition, compiled.assets, role_arn=cfg.role_arn,
                            display_name=compiled.display_name, description=compiled.description, tags=compiled.tags)


def report(ws: Workspace, execution_id: str, output: str | None = None) -> Path:
    """The HTML report of a local run (succeeded or not, `latest` the newest), written again from its
    records, with the registered model's approval status as the registry has it now."""
    from pipelines.report import read_definition, render_report
    from pipelines.targets.local import LocalTarget

    target = ws.target if isinstance(ws.target, LocalTarget) else LocalTarget(ws.home, home_given=bool(ws.flags.home))
    record = target.record(execution_id)
    run_dir = ws.home.runs / record["execution_id"]
    out = Path(output) if output else run_dir / "report.html"
    return render_report(record, read_definition(run_dir), target.store, out_path=out, home=ws.home)


def runs(ws: Workspace, *, last: int = 20) -> list[dict]:
    """The executions, newest first, one row each (`history.run_row`): locally every execution of the
    home, in SageMaker the definition's pipeline's."""
    name = None if ws.flags.local else ws.pipeline_name
    return [history.run_row(view) for view in ws.target.views(name, last)]


def compare(ws: Workspace, first: str, second: str) -> dict:
    """Two executions side by side (`history.compare`): parameters, metrics and deltas, model versions,
    changed code, and why their metrics may not compare. Ids (or `latest`), or ARNs in SageMaker."""
    name = None if ws.flags.local else ws.pipeline_name
    views = [ws.target.view(ref, name) for ref in (first, second)]
    return history.compare(*views, ws.target.read)


def logs(ws: Workspace, execution: str, step: str | None = None, *, follow: bool = False):
    """The log lines of an execution's jobs (one step's, or one job's, with `step`), a header before each
    log; with `follow`, new lines as they are written until the execution ends."""
    name = None if ws.flags.local else ws.pipeline_name
    yield from ws.target.logs(execution, step, follow=follow, pipeline_name=name)


def stop(ws: Workspace, execution: str) -> str:
    """Stop an execution: a local one's runner ends its jobs and records it Stopped."""
    return ws.target.stop(execution)


def prune(ws: Workspace, *, keep: int = 5, older_than: str | None = None, dry_run: bool = False) -> dict:
    """Free what runs left behind in a local home (`pipelines.local.prune`): executions beyond the newest
    `keep` (and older than `older_than`), losing trials' folders, batch transforms' unpacked models."""
    return ws.target.prune(keep=keep, older_than=older_than, dry_run=dry_run)


# --- registered models --------------------------------------------------------------------------


def models(ws: Workspace, *, group: str | None = None, every: bool = False, last: int = 10) -> list[dict]:
    """The model package group the command acts on (or `group`, or with `every` all groups) with its
    newest `last` versions."""
    groups = ws.target.groups(None if every else [ws.group(group)], last)
    for found in groups:
        _mark_identical(found["Versions"])
    return groups


def _mark_identical(versions: list[dict]) -> None:
    """`IdenticalTo`: the earlier version serving the very same model (artifact and image). A re-run
    whose steps were all cache hits registers again, as SageMaker's RegisterModel does, so a group
    can hold versions that differ in number only; this says which."""
    seen: dict[tuple, int] = {}
    for version in versions:
        containers = (version.get("InferenceSpecification") or {}).get("Containers") or []
        model = tuple((c.get("ModelDataUrl"), c.get("Image")) for c in containers)
        if model and all(url for url, _ in model):
            if model in seen:
                version["IdenticalTo"] = seen[model]
            else:
                seen[model] = version.get("ModelPackageVersion")


def set_approval(ws: Workspace, version: str, status: str, *, group: str | None = None,
                 description: str | None = None) -> dict:
    """Approve or reject the version `version` names; the version afterwards."""
    named = group or _group_of_arn(version)
    return ws.target.set_approval(named or ws.group(), version, status, description)


def deploy_endpoint(ws: Workspace, *, model_package: str, group: str | None = None, endpoint_name: str | None = None,
                    instance_type: str | None = None, instance_count: int = 1, wait: bool = False) -> tuple[dict, str]:
    """Point an endpoint at an Approved version: (what was done, what to do or know next)."""
    cfg = ws.environment
    package = ws.target.package(group or _group_of_arn(model_package) or ws.group(), model_package, approved=True)
    name = endpoint_name or f"{package['ModelPackageGroupName']}-{cfg.env}"[:63]
    return ws.target.deploy(package, endpoint_name=name, instance_type=instance_type or cfg.inference_instance_type,
                            instance_count=instance_count, role_arn=cfg.role_arn, tags=cfg.all_tags(), wait=wait)


def serve(ws: Workspace, *, model_package: str | None, endpoint_name: str | None, host: str, port: int,
          max_payload_mb: float, group: str | None = None) -> None:
    """Serve a registered version over HTTP until stopped: what `endpoint_name` serves, else
    `model_package` (default: the newest Approved one) of the group the command acts on."""
    ref = model_package or (ws.target.endpoint_package(endpoint_name) if endpoint_name else "latest-approved")
    package = ws.target.package(group or _group_of_arn(ref) or ws.group(), ref)
    ws.target.serve(package, endpoint_name=endpoint_name, host=host, port=port, max_payload_mb=max_payload_mb,
                    say=ws.say)


def predict(ws: Workspace, body: bytes, *, url: str, endpoint_name: str | None, content_type: str,
            accept: str) -> bytes:
    """Score rows with the local server at `url` or the SageMaker endpoint `endpoint_name`."""
    if not body.strip():
        raise UserError(f"predict reads the rows to score from standard input: {ws.target.hint('predict')} < rows.csv")
    return ws.target.predict(body, endpoint_name=endpoint_name, url=url, content_type=content_type, accept=accept)


def batch_transform(ws: Workspace, *, input_path: str, output: str | None, model_package: str,
                    group: str | None = None, instance_type: str | None = None, wait: bool = False) -> dict:
    """Score a file or prefix with an Approved version; the job (request or Describe response) and
    `Output`, where the results are (locally, a folder)."""
    cfg = ws.environment
    package = ws.target.package(group or _group_of_arn(model_package) or ws.group(), model_package, approved=True)
    return ws.target.batch_transform(package, input_path=input_path, output=output, root=ws.root,
                                     instance_type=instance_type or cfg.inference_instance_type,
                                     role_arn=cfg.role_arn, tags=cfg.all_tags(), wait=wait, say=ws.say)


def _group_of_arn(ref: str | None) -> str | None:
    """The group a model package ARN names (it needs no other)."""
    if ref and ref.startswith("arn:") and ":model-package/" in ref:
        return ref.split(":model-package/", 1)[1].rsplit("/", 1)[0]
    return None


def init(name: str, *, template: str, folder: str | None, config: str | None) -> list[Path]:
    """Scaffold the pipeline `name` (into ./NAME unless `folder`) and its table in the project's settings
    file (`config`, else ./ml-pipelines.toml, made if need be)."""
    from pipelines.config import PROJECT_FILE
    from pipelines.scaffold import scaffold

    return scaffold(name, Path(folder or name), Path(config or PROJECT_FILE), template)
