"""A small declarative language for SageMaker pipelines.

A definition reads like the pipeline diagram: parameters, then steps, with
data passed by reference (`prep.out.train`, `tune.best_model`,
`ev.report("evaluation")["metrics.auc.value"]`). Mistakes are refused here,
when the definition is built, with a message naming the step and the fix,
instead of by SageMaker an hour into a run.
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
# ml.<family>.<size>: ml.m5.xlarge, ml.g4dn.2xlarge, ml.trn1n.32xlarge, ml.p4de.24xlarge
INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.(medium|large|[0-9]*xlarge|metal)$")
FRAMEWORKS = ("sklearn", "xgboost", "pytorch", "tensorflow", "huggingface")
PINNED = ("sklearn", "xgboost")  # `image="sklearn"` / `"xgboost"`: the project's pinned versions
# Model code named by entry_point: these serving images read it from SAGEMAKER_SUBMIT_DIRECTORY; the
# others need the model archive repacked with the code by a job the SDK uploads code for at build time.
CODE_BESIDE_MODEL = ("sklearn", "xgboost")
IMAGE_URI = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})?$")
NUMBER_REGEX = "([-+0-9.eE]+)"  # the shorthand metric `name` is printed as `name=<number>;`


MIN_TUNING_RUNTIME = 120  # ResourceLimits.MaxRuntimeInSeconds' least value in SageMaker's API


class DefinitionError(ValueError):
    """A mistake in a pipeline definition, caught before anything runs."""


class Named(Exception):
    """Not an error: raised by `Pipeline(name)` while `naming()` is on, so a definition can be asked
    its pipeline's name without running the rest of it (whose settings depend on that name)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


_NAMING = contextvars.ContextVar("naming", default=False)


@contextlib.contextmanager
def naming():
    """Within it, `Pipeline(name)` raises `Named(name)` instead of being built."""
    token = _NAMING.set(True)
    try:
        yield
    finally:
        _NAMING.reset(token)


# --- values ---------------------------------------------------------------------------


class _Comparable:
    """`value >= threshold` builds a Condition, so a gate reads like the comparison it is."""

    def __ge__(self, other):
        return Condition(">=", self, other)

    def __gt__(self, other):
        return Condition(">", self, other)

    def __le__(self, other):
        return Condition("<=", self, other)

    def __lt__(self, other):
        return Condition("<", self, other)


@dataclass(frozen=True, eq=False)
class Parameter(_Comparable):
    """A value set when a run starts (from Studio, `deploy.py start -p`, or the default)."""

    name: str
    default: str | int | float
    enum: tuple[str, ...] = ()
    description: str = ""
    pattern: str = ""  # a String parameter's values must match it (checked before a run starts)

    @property
    def type(self) -> type:
        return type(self.default)

    @property
    def kind(self) -> str:
        return {str: "String", int: "Integer", float: "Float"}[self.type]

    def coerce(self, value) -> str | int | float:
        """`value` (often a command-line string) as this parameter's type, or a clear error."""
        try:
            if self.type is int and not (isinstance(value, float) or isinstance(value, bool)):
                typed = int(value)
            elif self.type is float and not isinstance(value, bool):
                typed = float(value)
            elif self.type is str and isinstance(value, str):
                typed = value
            else:
                raise ValueError
        except (TypeError, ValueError):
            raise DefinitionError(
                f"parameter {self.name} is {self.kind}: {value!r} is not a valid {self.kind.lower()}"
            ) from None
        if self.enum and typed not in self.enum:
            raise DefinitionError(f"parameter {self.name} must be one of {', '.join(self.enum)}, got {value!r}")
        if self.pattern and not re.fullmatch(self.pattern, str(typed)):
            raise DefinitionError(f"parameter {self.name}: {value!r} is not valid; {self.description or self.pattern}")
        return typed


@dataclass(frozen=True, eq=False)
class OutputRef:
    """The S3 URI a processing step writes its output `name` to."""

    step: "Processing"
    name: str


@dataclass(frozen=True, eq=False)
class ModelRef:
    """The model.tar.gz of a training step, or of the best job of a tuning step."""

    step: "Training"


@dataclass(frozen=True, eq=False)
class RegisteredModelRef:
    """The model.tar.gz a Register step registered (its InferenceSpecification's ModelDataUrl)."""

    step: "Register"


@dataclass(frozen=True, eq=False)
class ModelNameRef:
    """The name SageMaker gives the model a Model (CreateModel) step creates."""

    step: "Model"


@dataclass(frozen=True, eq=False)
class Sharded:
    """An input split across the step's instances by S3 key (ShardedByS3Key): each instance gets its own
    objects instead of all of them, so N instances share the work rather than repeat it."""

    source: object  # a Parameter, an s3:// URI or an OutputRef


@dataclass(frozen=True, eq=False)
class ReportRef:
    """A JSON report a processing step writes (a SageMaker PropertyFile)."""

    step: "Processing"
    name: str

    def __getitem__(self, path: str) -> "ReportValue":
        known = self.step.reports[self.name].paths
        if known and path not in known:
            raise DefinitionError(
                f"step {self.step.name!r} never writes {path!r} in report {self.name!r}: "
                f"use one of {', '.join(sorted(known))}"
            )
        return ReportValue(self, path)


@dataclass(frozen=True)
class Report:
    """A JSON file a processing step writes into one of its outputs; `paths`, when given, are the
    values it is known to contain, so a condition on any other path is refused at build time."""

    output: str
    file: str
    paths: frozenset = frozenset()


@dataclass(frozen=True, eq=False)
class ReportValue(_Comparable):
    """One value of a report, read when the run reaches it (JsonGet)."""

    report: ReportRef
    path: str


@dataclass(frozen=True, eq=False)
class Condition:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Continuous:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Integer:
    low: int
    high: int


@dataclass(frozen=True)
class Categorical:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # Maximize | Minimize


@dataclass(frozen=True)
class Image:
    """A SageMaker framework image by name and version, found in the compiler's image table
    (`pipelines/compiler/images.py`) for the pipeline's region and the step's instance type (its
    default, for a parameter):

        Image("sklearn", "1.2-1")
        Image("pytorch", "2.1", py_version="py310")
        Image("huggingface", "4.36", base="pytorch2.1", py_version="py310")

    `base` is Hugging Face's deep-learning framework and its version. Any other image is named by
    its URI (a str, e.g. "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mine:1")."""

    framework: str
    version: str | None = None  # None: the project's pinned version (sklearn and xgboost only)
    py_version: str | None = None
    base: str | None = None


# --- steps ----------------------------------------------------------------------------


@dataclass(eq=False)
class Step:
    name: str
    after: tuple = ()  # extra ordering, by step or name, beyond data references
    cache: bool = True
    retries: int = 2  # attempts after a transient failure (internal or capacity error)

    def inputs(self) -> list:
        """Every value this step reads; references among them order the DAG."""
        return []

    def upstream(self) -> list["Step"]:
        return [s for s in map(_producer, _flatten(self.inputs())) if s is not None]


@dataclass(eq=False)
class Processing(Step):
    script: Path = None
    image: Image | str = Image("sklearn")
    inputs_: dict = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    arguments: tuple = ()
    reports: dict = field(default_factory=dict)  # report name -> Report
    instance_type: object = None
    instance_count: object = 1

    @property
    def out(self) -> "_Outputs":
        return _Outputs(self)

    def report(self, name: str) -> ReportRef:
        if name not in self.reports:
            raise DefinitionError(
                f"step {self.name!r} declares no report {name!r}: add reports={{{name!r}: Report(output, file)}} "
                f"(declared: {', '.join(self.reports) or 'none'})"
            )
        return ReportRef(self, name)

    def inputs(self) -> list:
        return [*self.inputs_.values(), *self.arguments, self.instance_type, self.instance_count]


class _Outputs:
    def __init__(self, step: Processing):
        self._step = step

    def __getattr__(self, name: str) -> OutputRef:
        if name.startswith("_") or name not in self._step.outputs:
            raise DefinitionError(
                f"step {self._step.name!r} has no output {name!r}: its outputs are "
                f"{', '.join(self._step.outputs) or 'none'}; add it to outputs=[...] or fix the reference"
            )
        return OutputRef(self._step, name)


@dataclass(eq=False)
class Training(Step):
    source_dir: Path = None
    entry_point: str = "train.py"
    image: Image | str = Image("xgboost")
    channels: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # metric name -> regex whose first group is the value
    instance_type: object = None
    instance_count: object = 1  # above 1, the script trains one model across the instances
    # Seconds (or an Integer parameter) a job may run: StoppingCondition.MaxRuntimeInSeconds of each training
    # job and, for a tuning step, ResourceLimits.MaxRuntimeInSeconds of the tuning job too; None: SageMaker's 1 day
    max_runtime: object = None

    @property
    def model(self) -> ModelRef:
        return ModelRef(self)

    def inputs(self) -> list:
        return [*self.channels.values(), *self.hyperparameters.values(), self.instance_type, self.instance_count,
                *([self.max_runtime] if self.max_runtime is not None else [])]


@dataclass(eq=False)
class Tuning(Training):
    objective: Objective = None
    ranges: dict = field(default_factory=dict)
    max_jobs: object = 4
    max_parallel: object = 2
    strategy: str = "Random"
    random_seed: int | None = None  # fixes the search's proposals, so a rerun tries the same hyperparameters
    early_stopping: bool = False  # TrainingJobEarlyStoppingType Auto: stop trials worse than the median so far

    @property
    def best_model(self) -> ModelRef:
        return ModelRef(self)

    def inputs(self) -> list:
        return [*super().inputs(), self.max_jobs, self.max_parallel]


@dataclass(eq=False)
class Register(Step):
    model: ModelRef = None
    group: str = ""
    approval_status: object = "PendingManualApproval"
    report: ReportRef = None
    image: Image | str = Image("xgboost")
    entry_point: str | None = None  # the inference program, when the model archive does not carry it
    source_dir: Path | None = None
    content_types: tuple[str, ...] = ("text/csv", "application/json")
    inference_instance_type: str = "ml.m5.large"
    description: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def model_data(self) -> RegisteredModelRef:
        """The artifact exactly as registered: what a Model step after registration should serve."""
        return RegisteredModelRef(self)

    def inputs(self) -> list:
        return [self.model, self.approval_status, self.report]


@dataclass(eq=False)
class Model(Step):
    """CreateModel: the serving container (image, model data, inference code) under a name."""

    model: object = None  # ModelRef or RegisteredModelRef
    image: Image | str = Image("xgboost")
    entry_point: str | None = None
    source_dir: Path | None = None
    instance_type: str = "ml.m5.large"  # picks the serving image (CPU or GPU); not a deployment

    @property
    def name_ref(self) -> ModelNameRef:
        return ModelNameRef(self)

    def inputs(self) -> list:
        return [self.model]


@dataclass(eq=False)
class Transform(Step):
    """A batch transform job: score every object under `data` with a Model step's model."""

    model: Model = None
    data: object = None  # s3:// URI, Parameter or OutputRef
    instance_type: object = None
    instance_count: object = 1
    content_type: str = "text/csv"
    split_type: str = "None"  # None: each object is one request; Line: one record per line
    accept: str = "text/csv"
    assemble_with: str = "Line"
    max_payload_mb: int = 6

    def inputs(self) -> list:
        return [self.model.name_ref, self.data, self.instance_type, self.instance_count]


@dataclass(eq=False)
class Fail(Step):
    message: tuple = ()

    def inputs(self) -> list:
        return list(self.message)


@dataclass(eq=False)
class ConditionStep(Step):
    condition: Condition = None
    then: tuple[Step, ...] = ()
    otherwise: tuple[Step, ...] = ()

    def inputs(self) -> list:
        return [self.condition]


def _flatten(values) -> list:
    out = []
    for v in values:
        if isinstance(v, Condition):
            out += _flatten([v.left, v.right])
        elif isinstance(v, ReportValue):
            out.append(v.report)
        elif isinstance(v, Sharded):
            out.append(v.source)
        else:
            out.append(v)
    return out


def _producer(value) -> Step | None:
    if isinstance(value, (OutputRef, ModelRef, ReportRef, RegisteredModelRef, ModelNameRef)):
        return value.step
    return None


# --- the pipeline ---------------------------------------------------------------------


class Pipeline:
    """Collects parameters and steps; every adder checks its arguments at once."""

    def __init__(self, name: str, *, display_name: str = "", description: str = ""):
        _check_name("pipeline", name, "", limit=256)
        if _NAMING.get():
            raise Named(name)
        self.name, self.display_name, self.description = name, display_name or name, description
        self.parameters: dict[str, Parameter] = {}
        self.steps: dict[str, Step] = {}
        self._branch_of: dict[str, str] = {}  # branch step name -> its condition step

    def parameter(self, name: str, default, *, enum=(), description: str = "", pattern: str = "") -> Parameter:
        _check_name("parameter", name, "")
        if name in self.parameters:
            raise DefinitionError(f"parameter {name!r} is defined twice: give each parameter its own name")
        if type(default) not in (str, int, float):
            raise DefinitionError(
                f"parameter {name!r}: default {default!r} must be a str, int or float (SageMaker's String, Integer, Float)"
            )
        param = Parameter(name, default, tuple(enum), description, pattern)
        param.coerce(default)  # a default outside its own enum or pattern is a mistake too
        self.parameters[name] = param
        return param

    def processing(self, name, script, *, inputs=None, outputs=(), arguments=(), reports=None,
                   image="sklearn", instance_type, instance_count=1, **options) -> Processing:
        step = Processing(name, script=_script(name, script), image=_image(name, image), inputs_=dict(inputs or {}),
                          outputs=tuple(outputs), arguments=tuple(arguments),
                          reports={k: v if isinstance(v, Report) else Report(*v) for k, v in (reports or {}).items()},
                          instance_type=instance_type, instance_count=instance_count, **options)
        for report, declared in step.reports.items():
            if declared.output not in step.outputs:
                raise DefinitionError(
                    f"step {name!r}: report {report!r} is written to output {declared.output!r}, "
                    f"which is not in outputs={list(step.outputs)}; add it to outputs or write the report "
                    f"to a declared output"
                )
        self._check_instances(step, instance_type, instance_count)
        return self._add(step)

    def training(self, name, source_dir, *, entry_point="train.py", image="xgboost", channels, hyperparameters=None,
                 metrics=(), instance_type, instance_count=1, **options) -> Training:
        """A training job running `entry_point` from `source_dir` in `image` (script mode).

        `metrics` are SageMaker's metric definitions, read from the job's log: {name: regex} with the
        value as the regex's first group, or bare names, short for the regex `name=<number>;`."""
        return self._add_training(Training, name, source_dir, entry_point, image, channels, hyperparameters,
                                  _metric_definitions(name, metrics), instance_type, instance_count=instance_count,
                                  **options)

    def tuning(self, name, source_dir, *, entry_point="train.py", image="xgboost", channels, hyperparameters=None,
               metrics=(), instance_type, instance_count=1, objective: Objective, ranges: dict, max_jobs=4,
               max_parallel=2,
               strategy="Random", random_seed=None, **options) -> Tuning:
        """A tuning job over `training`'s job; the objective is one of `metrics` (a bare name is added
        with the shorthand regex when missing)."""
        if objective.direction not in ("Maximize", "Minimize"):
            raise DefinitionError(f"step {name!r}: objective direction must be Maximize or Minimize")
        if not ranges:
            raise DefinitionError(f"step {name!r}: a tuning step needs at least one range to search")
        for key, r in ranges.items():
            if not isinstance(r, (Continuous, Integer, Categorical)):
                raise DefinitionError(f"step {name!r}: range {key!r} is {r!r}; use Continuous(low, high), "
                                      f"Integer(low, high) or Categorical(values)")
            _check_range(name, key, r)
        for key, value in (("max_jobs", max_jobs), ("max_parallel", max_parallel)):
            _check_integer(name, key, value)
        if not isinstance(options.get("early_stopping", False), bool):
            raise DefinitionError(f"step {name!r}: early_stopping must be True or False")
        if options.get("max_runtime") is not None:
            _check_integer(name, "max_runtime", options["max_runtime"], least=MIN_TUNING_RUNTIME,
                           why=" (the least CreateHyperParameterTuningJob accepts)")
        if random_seed is not None and (not isinstance(random_seed, int) or isinstance(random_seed, bool)
                                        or random_seed < 0):
            raise DefinitionError(f"step {name!r}: random_seed must be a whole number >= 0 (or None for a "
                                  f"different search each run), got {random_seed!r}")
        definitions = _metric_definitions(name, metrics)
        if objective.metric not in definitions:
            if isinstance(metrics, dict):
                raise DefinitionError(f"step {name!r}: the objective {objective.metric!r} has no metric definition: "
                                      f"add {objective.metric!r}: r'<regex with the value as group 1>' to metrics")
            definitions = {**_metric_definitions(name, [objective.metric]), **definitions}
        return self._add_training(Tuning, name, source_dir, entry_point, image, channels, hyperparameters,
                                  definitions, instance_type, instance_count=instance_count, objective=objective,
                                  ranges=dict(ranges), max_jobs=max_jobs,
                                  max_parallel=max_parallel, strategy=strategy, random_seed=random_seed, **options)

    def register(self, name, model: ModelRef, *, group: str, report: ReportRef, approval_status="PendingManualApproval",
                 image="xgboost", entry_point=None, source_dir=None, **options) -> Register:
        """Register the model in `group` with `report`'s metrics. Served by `image`; its inference program
        is `entry_point` in `source_dir` when given, else `code/inference.py` inside the model archive."""
        # SageMaker names the step `<name>-RegisterModel`, and that name must be valid too.
        _check_name("step", name, " (SageMaker calls it <name>-RegisterModel)", limit=64 - len("-RegisterModel"))
        if not isinstance(model, ModelRef):
            raise DefinitionError(f"step {name!r}: model must be a training step's .model or a tuning step's .best_model")
        if not isinstance(report, ReportRef):
            raise DefinitionError(f"step {name!r}: report must be a processing step's .report('name'), "
                                  f"whose metrics are registered with the model")
        _check_name("model package group", group, f" (step {name!r})", limit=63)
        return self._add(Register(name, model=model, group=group, report=report, approval_status=approval_status,
                                  **_serving(name, image, entry_point, source_dir), **options))

    def model(self, name, model, *, image="xgboost", entry_point=None, source_dir=None, instance_type="ml.m5.large",
              **options) -> Model:
        """CreateModel from a training step's .model, a tuning step's .best_model or a Register step's .model_data."""
        # SageMaker names the step `<name>-CreateModel`, and that name must be valid too.
        _check_name("step", name, " (SageMaker calls it <name>-CreateModel)", limit=64 - len("-CreateModel"))
        if not isinstance(model, (ModelRef, RegisteredModelRef)):
            raise DefinitionError(f"step {name!r}: model must be a training step's .model, a tuning step's "
                                  f".best_model or a register step's .model_data")
        step = Model(name, model=model, instance_type=instance_type, **_serving(name, image, entry_point, source_dir),
                     **options)
        self._check_instances(step, instance_type, 1)
        return self._add(step)

    def transform(self, name, model: Model, *, data, instance_type, instance_count=1, content_type="text/csv",
                  split_type="None", accept="text/csv", assemble_with="Line", max_payload_mb=6,
                  **options) -> Transform:
        if not isinstance(model, Model):
            raise DefinitionError(f"step {name!r}: model must be a model step (p.model(...)), got {model!r}")
        source = data.default if isinstance(data, Parameter) else data
        if not (isinstance(data, OutputRef) or (isinstance(source, str) and source.startswith("s3://"))):
            raise DefinitionError(f"step {name!r}: data must be an s3:// URI, a String parameter holding one, "
                                  f"or a processing step's output; got {source!r}")
        for what, value, allowed in (("split_type", split_type, ("None", "Line")),
                                     ("assemble_with", assemble_with, ("None", "Line"))):
            if value not in allowed:
                raise DefinitionError(f"step {name!r}: {what} must be one of {', '.join(allowed)}, got {value!r}")
        if not isinstance(max_payload_mb, int) or isinstance(max_payload_mb, bool) or not 0 <= max_payload_mb <= 100:
            raise DefinitionError(f"step {name!r}: max_payload_mb must be a whole number of MB from 0 to 100 "
                                  f"(SageMaker's MaxPayloadInMB), got {max_payload_mb!r}")
        step = Transform(name, model=model, data=data, instance_type=instance_type, instance_count=instance_count,
                         content_type=content_type, split_type=split_type, accept=accept,
                         assemble_with=assemble_with, max_payload_mb=max_payload_mb, **options)
        self._check_instances(step, instance_type, instance_count)
        return self._add(step)

    def fail(self, name, *message) -> Fail:
        return self._add(Fail(name, message=message))

    def condition(self, name, condition: Condition, *, then=(), otherwise=()) -> ConditionStep:
        if not isinstance(condition, Condition):
            raise DefinitionError(
                f"step {name!r}: the condition must compare a report value or parameter, e.g. "
                f"ev.report('evaluation')['metrics.auc.value'] >= threshold"
            )
        step = ConditionStep(name, condition=condition, then=tuple(then), otherwise=tuple(otherwise))
        for branch_step in (*step.then, *step.otherwise):
            if self.steps.get(branch_step.name) is not branch_step:
                raise DefinitionError(f"step {name!r}: branch step {branch_step.name!r} was not added to this pipeline")
            if branch_step.name in self._branch_of:
                raise DefinitionError(
                    f"step {branch_step.name!r} is already a branch of {self._branch_of[branch_step.name]!r}: "
                    f"a step belongs to one branch"
                )
            self._branch_of[branch_step.name] = name
        return self._add(step)

    # -- queries used by the compiler --

    def top_level(self) -> list[Step]:
        """Steps outside any condition branch, in definition order."""
        return [s for s in self.steps.values() if s.name not in self._branch_of]

    def validate(self) -> "Pipeline":
        """Whole-graph checks: there are steps, references stay inside this pipeline, there is no cycle."""
        if not self.steps:
            raise DefinitionError(f"pipeline {self.name!r} has no steps: add at least one (p.processing, "
                                  f"p.training, ...) before returning it")
        for step in self.steps.values():
            for up in self._dependencies(step):
                if self.steps.get(up.name) is not up:
                    raise DefinitionError(
                        f"step {step.name!r} reads from step {up.name!r}, which is not part of pipeline "
                        f"{self.name!r}; add that step to this pipeline and read from it there"
                    )
            for param in (v for v in _flatten(step.inputs()) if isinstance(v, Parameter)):
                if self.parameters.get(param.name) is not param:
                    raise DefinitionError(
                        f"step {step.name!r} uses parameter {param.name!r}, which pipeline {self.name!r} does not "
                        f"define: create it with p.parameter({param.name!r}, default)"
                    )
        self._check_acyclic()
        return self

    def _dependencies(self, step: Step) -> list[Step]:
        deps = list(step.upstream())
        for ref in step.after:
            if isinstance(ref, str):
                if ref not in self.steps:
                    raise DefinitionError(
                        f"step {step.name!r} runs after {ref!r}, which is not a step of this pipeline "
                        f"(steps: {', '.join(self.steps)}); fix the name or add that step"
                    )
                ref = self.steps[ref]
            deps.append(ref)
        return deps

    def _check_acyclic(self) -> None:
        state: dict[str, str] = {}

        def visit(step: Step, path: list[str]) -> None:
            if state.get(step.name) == "done":
                return
            if state.get(step.name) == "active":
                cycle = " -> ".join([*path[path.index(step.name):], step.name])
                raise DefinitionError(f"the steps form a cycle: {cycle}; remove one of these dependencies")
            state[step.name] = "active"
            for dep in self._dependencies(step):
                visit(dep, [*path, step.name])
            state[step.name] = "done"

        for step in self.steps.values():
            visit(step, [])

    # -- helpers --

    def _add_training(self, cls, name, source_dir, entry_point, image, channels, hyperparameters, metrics,
                      instance_type, **options):
        folder = _script(name, source_dir, folder=True)
        _script(name, Path(source_dir) / entry_point)
        step = cls(name, source_dir=folder, entry_point=entry_point, image=_image(name, image), channels=dict(channels),
                   hyperparameters=dict(hyperparameters or {}), metrics=metrics,
                   instance_type=instance_type, **options)
        self._check_instances(step, instance_type, step.instance_count)
        if step.max_runtime is not None:
            _check_integer(name, "max_runtime", step.max_runtime)
        return self._add(step)

    def _add(self, step: Step) -> Step:
        _check_name("step", step.name, "")
        if step.name in self.steps:
            raise DefinitionError(f"step name {step.name!r} is used twice: step names must be unique in a pipeline")
        if not isinstance(step.retries, int) or step.retries < 0:
            raise DefinitionError(f"step {step.name!r}: retries must be a whole number >= 0")
        self.steps[step.name] = step
        return step

    def _check_instances(self, step: Step, instance_type, instance_count) -> None:
        value = instance_type.default if isinstance(instance_type, Parameter) else instance_type
        if not isinstance(value, str) or not INSTANCE_TYPE.match(value):
            raise DefinitionError(
                f"step {step.name!r}: instance type {value!r} is not a SageMaker instance type; "
                f"use a name like ml.m5.xlarge"
            )
        _check_integer(step.name, "instance_count", instance_count)


def _check_range(step: str, name: str, r) -> None:
    """SageMaker refuses an empty or upside-down range, and a log scale that reaches zero, at run time."""
    if isinstance(r, Categorical):
        if not r.values:
            raise DefinitionError(f"step {step!r}: range {name!r} has no values; list at least one")
    elif not r.low < r.high:
        raise DefinitionError(f"step {step!r}: range {name!r} goes from {r.low} to {r.high}; "
                              f"the low end must be below the high end")
    elif isinstance(r, Continuous) and r.log and r.low <= 0:
        raise DefinitionError(f"step {step!r}: range {name!r} is log-scaled, so its low end must be above 0")


def _check_integer(step: str, what: str, value, least: int = 1, why: str = "") -> None:
    if isinstance(value, Parameter):
        if value.type is not int:
            raise DefinitionError(
                f"step {step!r}: {what} needs an Integer parameter, but parameter {value.name!r} is {value.kind}"
            )
        value = value.default
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise DefinitionError(f"step {step!r}: {what} must be a whole number >= {least}{why}, got {value!r}")


def _check_name(what: str, name, where: str, limit: int = 64) -> None:
    pattern = STEP_NAME if limit == 64 else re.compile(rf"^[A-Za-z0-9\-_]{{1,{limit}}}$")
    if not isinstance(name, str) or not pattern.match(name):
        raise DefinitionError(
            f"{what} name {name!r}{where} is not accepted by SageMaker: use 1 to {limit} letters, digits, '-' or '_'"
        )


def _script(step: str, path, folder: bool = False) -> Path:
    """`path`, absolute or relative to the project root, checked to exist."""
    full = (PROJECT_ROOT / path).resolve()
    if not (full.is_dir() if folder else full.is_file()):
        kind = "folder" if folder else "script"
        where = "" if Path(path).is_absolute() else \
            " (relative paths start at the project root; beside your definition, use Path(__file__).parent / ...)"
        raise DefinitionError(
            f"step {step!r}: {kind} {path} does not exist under {PROJECT_ROOT}; create it or fix the path{where}"
        )
    return full


def _image(step: str, image) -> Image | str:
    """`image` as an Image, or a URI; "sklearn" and "xgboost" stand for the pinned versions."""
    if isinstance(image, str) and image in PINNED:
        return Image(image)
    if isinstance(image, str) and IMAGE_URI.match(image):
        return image
    if isinstance(image, str) and image in FRAMEWORKS:
        raise DefinitionError(f"step {step!r}: image {image!r} needs a version: use Image({image!r}, VERSION, "
                              f"py_version=...), e.g. Image(\"pytorch\", \"2.1\", py_version=\"py310\")")
    if not isinstance(image, Image):
        raise DefinitionError(f"step {step!r}: image {image!r} is no image: use \"sklearn\" or \"xgboost\" (pinned "
                              f"versions), Image(framework, version) for any of {', '.join(FRAMEWORKS)}, or an image "
                              f"URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME:TAG)")
    if image.framework not in FRAMEWORKS:
        raise DefinitionError(f"step {step!r}: framework {image.framework!r} is not one of {', '.join(FRAMEWORKS)}; "
                              f"name any other image by its URI")
    if image.version is None and image.framework not in PINNED:
        raise DefinitionError(f"step {step!r}: Image({image.framework!r}) needs a version, e.g. "
                              f"Image({image.framework!r}, \"2.1\", py_version=\"py310\")")
    if (image.framework == "huggingface") != (image.base is not None):
        raise DefinitionError(f"step {step!r}: base (e.g. base=\"pytorch2.1\") names the framework under Hugging Face's "
                              f"transformers, and only there")
    return image


def _serving(step: str, image, entry_point, source_dir) -> dict:
    """The serving fields of a Register or Model step, checked."""
    image = _image(step, image)
    if entry_point is None:
        if source_dir is not None:
            raise DefinitionError(f"step {step!r}: source_dir needs entry_point, the inference program in it")
        return {"image": image}
    framework = image.framework if isinstance(image, Image) else None
    if framework not in CODE_BESIDE_MODEL:
        raise DefinitionError(
            f"step {step!r}: entry_point works with the {' and '.join(CODE_BESIDE_MODEL)} serving images, which "
            f"read the code from its own archive; {framework or 'a custom image'} needs the code inside the model "
            f"archive: have the training script copy it to <model dir>/code/ and leave entry_point out")
    if source_dir is None:
        raise DefinitionError(f"step {step!r}: entry_point {entry_point!r} needs source_dir, the folder holding it")
    folder = _script(step, source_dir, folder=True)
    _script(step, Path(source_dir) / entry_point)
    return {"image": image, "entry_point": entry_point, "source_dir": folder}


def _metric_definitions(step: str, metrics) -> dict[str, str]:
    """{name: regex}: SageMaker's metric definitions, each regex checked to compile with a group."""
    pairs = metrics.items() if isinstance(metrics, dict) else \
        [(name, f"{re.escape(name)}={NUMBER_REGEX};") for name in metrics]
    out = {}
    for name, regex in pairs:
        if not isinstance(name, str) or not name or not isinstance(regex, str):
            raise DefinitionError(f"step {step!r}: metrics are {{name: regex}} or names, got {name!r}: {regex!r}")
        try:
            groups = re.compile(regex).groups
        except re.error as e:
            raise DefinitionError(f"step {step!r}: the regex of metric {name!r} does not compile: {e}") from None
        if groups < 1:
            raise DefinitionError(f"step {step!r}: the regex of metric {name!r} needs a group around the value, "
                                  f"e.g. r'{re.escape(name)}: ([-+0-9.eE]+)'")
        out[name] = regex
    return out
