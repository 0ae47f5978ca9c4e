"""The tabular pipeline, the product's default: any table, its label and its problem type.

Preprocess -> Tune (or Train) -> Evaluate -> QualityGate -> Register | Fail.
Preprocess writes the schema of whatever table it is given, the model builds its features from that
schema (plus a feature set, when the settings name one), and everything that depends on the problem
type comes from `problems`. It is a definition like any user's: the framework loads it by name
(`--definition pipelines.tabular`, the default) and never imports it; another definition may build
on it (`pipeline(cfg, name, ...)`, `Settings` with its own defaults), as the worked example does.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from pipelines.bundles import with_files
from pipelines.config import Config
from pipelines.dsl import Continuous, DefinitionError, Integer, Objective, Pipeline, Report, Sharded
from pipelines.inputs import InputError
from pipelines.scoring import MAX_PAYLOAD_MB, SCORING
from pipelines.settings import duration_seconds, setting
from pipelines.tabular.inputs import check_input, first_table, manifest_labels
from pipelines.tabular.problems import DEFAULT_THRESHOLD, PROBLEMS, THRESHOLD_PATTERN
from pipelines.tabular.suggest import Suggestion, suggest_table

__all__ = ["NAME", "Settings", "check_input", "definition", "model_group", "pipeline", "settle", "suggest"]

NAME = "tabular"
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
NO_FEATURE_SET = ("", "none")


@dataclass(frozen=True)
class Settings:
    """What the tabular pipeline needs to know of a table (its `[pipeline.NAME]` table, -s, or these flags)."""

    label: str = setting("", "the column to predict", flag=True)
    problem_type: str = setting("", "binary, multiclass or regression (default: the one `suggest` recommends for "
                                    "a local --input-data)", choices=tuple(PROBLEMS), flag=True)
    positive_class: str = setting("", "binary: the label value that is the positive class (default: true/yes/1..., "
                                      "else the minority class)", flag=True)
    schema: dict = setting({}, 'declared column kinds, JSON or a JSON file: {"column": "kind"} overrides inferred '
                               "kinds; a schema.json (as Preprocess writes it) replaces them", flag=True)
    feature_set: str = setting("none", "domain features added to the generic ones: a .py file "
                                       "(training_scripts/feature_sets/ says what it holds), or none", flag=True)
    tuning: bool = setting(True, "tune hyperparameters (TuningStep) or train once (TrainingStep)", flag=True)
    time_budget: str = setting("2m", "how long training may take, e.g. 90s, 5m or 1h30m (the TimeBudget "
                                     "parameter's default); a tuning job needs at least 2m", flag=True)
    families: str = setting("auto", "the model's families: auto (every one the training image holds) or a "
                                    "list, e.g. xgboost for one family, faster", flag=True)
    batch_transform: bool = setting(False, "after registration, score the ScoringData parameter "
                                           "(CreateModel + TransformStep)", flag=True)
    label_attribute: str = setting("", "the input is a Ground Truth labeling job's output manifest: its label "
                                       "attribute (the label, its class names from NAME-metadata)", flag=True)
    min_confidence: float = setting(0.0, "manifest: objects whose label confidence is below this are dropped "
                                         "(counted in the profile)", flag=True)
    human_annotated_only: bool = setting(False, "manifest: drop objects labeled by automated data labeling "
                                                "(human-annotated: no)", flag=True)

    def __post_init__(self):
        duration_seconds(self.time_budget)  # a mistake is refused here, naming the setting
        if self.label_attribute and self.label and self.label != self.label_attribute:
            raise ValueError(f"--label {self.label} and --label-attribute {self.label_attribute} differ: a manifest's "
                             f"label is its label attribute; drop --label")
        if self.label_attribute:
            object.__setattr__(self, "label", self.label_attribute)  # the label column Preprocess makes of it


def definition(cfg: Config) -> Pipeline:
    return pipeline(cfg, NAME, display_name="Tabular",
                    description="Predicts a column of any table from the others (an ensemble of model families, tuned, gated "
                                "against a constant predictor).")


def pipeline(cfg: Config, name: str, *, display_name: str, description: str, default_data: str | None = None) -> Pipeline:
    """The tabular pipeline named `name`, built with `cfg` (whose `settings` are a `Settings`); its
    InputData defaults to `input_data`, else `default_data`, else the `input/` prefix of the pipeline."""
    p = Pipeline(name, display_name=display_name, description=description)
    s: Settings = cfg.settings
    if not s.label:
        raise DefinitionError(f"pipeline {name} needs the column to predict: pass --label COLUMN (and --input-data "
                              f"PATH), or set `label` under [pipeline.{name}] in ml-pipelines.toml")
    if not s.problem_type:
        raise DefinitionError(f"pipeline {name} needs the problem type: pass --problem-type "
                              f"{'|'.join(PROBLEMS)} (`suggest --input-data FILE --label {s.label}` recommends one; "
                              f"`run --local` with a local --input-data picks that one itself)")
    problem = PROBLEMS[s.problem_type]
    default_data = cfg.input_data or default_data or f"{cfg.s3_root}/input/"

    input_data = p.parameter("InputData", default_data,
                             description="S3 URI of the raw table: one CSV/Parquet file or a prefix (with label_attribute, "
                                         "a Ground Truth output manifest)")
    processing_type = p.parameter("ProcessingInstanceType", cfg.processing_instance_type)
    processing_count = p.parameter("ProcessingInstanceCount", 1)
    training_type = p.parameter("TrainingInstanceType", cfg.training_instance_type)
    training_count = p.parameter("TrainingInstanceCount", 1,
                                 description="Instances each training job trains one model across (XGBoost's "
                                             "collective); each reads its share of the data")
    max_jobs = p.parameter("MaxTuningJobs", cfg.max_tuning_jobs)
    max_parallel = p.parameter("MaxParallelTuningJobs", cfg.max_parallel_tuning_jobs)
    time_budget = p.parameter("TimeBudget", duration_seconds(s.time_budget),
                              description="Seconds training may take: the tuning job's and each training job's "
                                          "MaxRuntimeInSeconds (a tuning job needs at least 120); train.py plans "
                                          "folds, rounds and model families to fit in it")
    threshold = p.parameter(
        "QualityThreshold", str(cfg.quality_threshold or DEFAULT_THRESHOLD), pattern=THRESHOLD_PATTERN,
        description=f"{'Smallest' if problem.gate_direction == 'Maximize' else 'Largest'} acceptable test "
                    f"{problem.gate_metric}: a number, or baseline+N% (N% of the way from a constant predictor's "
                    f"score to a perfect one)")
    approval = p.parameter("ModelApprovalStatus", cfg.model_approval_status, enum=APPROVAL_STATUSES)
    seed = p.parameter("SplitSeed", 42, description="Seed of the train/validation/test split")
    schema = p.parameter("Schema", declared_schema(s),
                         description='Declared column kinds, JSON: {"column": "number|code|category|boolean|'
                                     'datetime|dropped"} overrides those inferred, a whole schema.json replaces them')
    if s.batch_transform:
        scoring_data = p.parameter(
            "ScoringData", default_data,
            description="S3 URI (CSV file or prefix) scored after registration; rows need a header, "
                        "and a label column is ignored. Default: the input data")

    task = ["--problem-type", s.problem_type, "--label", s.label]
    prep = p.processing(
        "Preprocess", script("preprocess.py"),
        inputs={"raw": Sharded(input_data)},  # each instance reads its own objects: split big inputs into several
        outputs=["train", "validation", "test", "profile", "schema"],
        # Paths are spelled out (they are the scripts' defaults) so the local runner can map them
        # where it has no mount namespace to put the job's directory at /opt/ml.
        arguments=[*task, "--seed", seed, "--schema", schema, "--positive-class", s.positive_class or "",
                   *manifest_arguments(s),
                   "--input-dir", "/opt/ml/processing/input/raw",
                   "--output-dir", "/opt/ml/processing/output", "--failure-file", "/opt/ml/output/message"],
        instance_type=processing_type, instance_count=processing_count,
    )

    source, feature_set = training_source(s.feature_set)
    training = dict(
        channels={"train": Sharded(prep.out.train), "validation": Sharded(prep.out.validation),
                  "schema": prep.out.schema},
        hyperparameters={"problem_type": s.problem_type, "label": s.label, "feature_set": feature_set,
                         "time_budget": time_budget, "families": s.families},
        metrics=[problem.tuning_metric],
        instance_type=training_type, instance_count=training_count, max_runtime=time_budget,
    )
    if s.tuning:
        # A trial plans for its share of the budget: TimeBudget x MaxParallelTuningJobs / MaxTuningJobs
        training["hyperparameters"].update(tuning_jobs=max_jobs, tuning_parallel=max_parallel)
        train = p.tuning(
            "Tune", source, **training,
            objective=Objective(problem.tuning_metric, problem.tuning_direction),
            ranges={
                "eta": Continuous(0.01, 0.3, log=True),
                "max_depth": Integer(3, 10),
                "min_child_weight": Continuous(1, 10, log=True),
                "subsample": Continuous(0.5, 1.0),
                "colsample_bytree": Continuous(0.5, 1.0),
                "lambda": Continuous(0.1, 10, log=True),
            },
            max_jobs=max_jobs, max_parallel=max_parallel,
            random_seed=0,  # the same trials every run: a rerun, or another split seed, compares like for like
            early_stopping=True,  # a trial worse than the median of earlier ones at the same point stops
        )
    else:
        train = p.training("Train", source, **training)

    evaluate = p.processing(
        "Evaluate", script("evaluate.py"), image="xgboost",
        inputs={"model": train.model, "test": prep.out.test},
        outputs=["evaluation"],
        arguments=[*task, "--gate-metric", problem.gate_metric, "--gate-direction", problem.gate_direction,
                   "--quality-threshold", threshold,
                   "--model-dir", "/opt/ml/processing/input/model", "--test-dir", "/opt/ml/processing/input/test",
                   "--output-dir", "/opt/ml/processing/output/evaluation", "--failure-file", "/opt/ml/output/message"],
        reports={"evaluation": Report("evaluation", "evaluation.json", problem.metric_paths)},
        instance_type=processing_type,
    )
    report = evaluate.report("evaluation")
    metric, minimum = report[problem.gate_path], report["gate.threshold"]

    register = p.register(
        "Register", train.model, group=cfg.model_package_group or model_group(name, s), report=report,
        approval_status=approval,
        inference_instance_type=cfg.inference_instance_type,
        description=f"{s.problem_type} XGBoost model of {s.label!r} from pipeline {name}",
        metadata={"problem_type": s.problem_type, "label": s.label},
    )
    fail = p.fail("Fail", f"Quality gate failed: test {problem.gate_metric} =", metric,
                  "is not", ">=" if problem.gate_direction == "Maximize" else "<=", minimum,
                  "from QualityThreshold", threshold)
    passed = metric >= minimum if problem.gate_direction == "Maximize" else metric <= minimum
    then = [register]
    if s.batch_transform:
        # Score with exactly the registered artifact, as batch-transform and predict do (pipelines.scoring:
        # each CSV object whole, so its header travels with every row; docs/ARCHITECTURE.md, "Scoring data").
        model = p.model("ScoringModel", register.model_data, instance_type=cfg.inference_instance_type)
        then += [model, p.transform(
            "BatchTransform", model, data=scoring_data, instance_type=cfg.inference_instance_type,
            content_type=SCORING["ContentType"], split_type=SCORING["SplitType"], accept=SCORING["Accept"],
            assemble_with=SCORING["AssembleWith"], max_payload_mb=MAX_PAYLOAD_MB)]
    p.condition("QualityGate", passed, then=then, otherwise=[fail])
    return p


def suggest(path: Path, cfg: Config) -> Suggestion:
    """The approach `deploy.py suggest` recommends for the local table at `path` (cfg.settings.label, if any)."""
    return suggest_table(path, cfg.settings.label)


def settle(path: Path, cfg: Config) -> tuple[dict, str]:
    """(the settings the local input at `path` decides because the user left them open, the line saying so):
    the problem type `suggest` recommends, when none was given."""
    s: Settings = cfg.settings
    if s.problem_type or not s.label:
        return {}, ""
    if s.label_attribute:
        classes = sorted({v for v in manifest_labels(first_table(path), s) if v is not None})
        if len(classes) < 2:
            raise InputError(f"{path}: every label of {s.label_attribute!r} is {classes[0]!r}: there is nothing to "
                             f"tell apart")
        kind = "binary" if len(classes) == 2 else "multiclass"
        return {"problem_type": kind}, f"problem type {kind}: the manifest's {s.label_attribute!r} labels have " \
                                       f"{len(classes)} classes ({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''}) " \
                                       f"(--problem-type to choose)"
    found = suggest(path, cfg)
    if found.problem_type not in PROBLEMS:
        raise InputError(f"{path}: {found.verdict}; see `suggest --input-data {path} --label {s.label}`")
    return {"problem_type": found.problem_type}, \
        f"problem type {found.problem_type}, as suggest recommends: {found.verdict} (--problem-type to choose)"


def model_group(name: str, s: Settings) -> str:
    """One model package group per model: the pipeline, the label and the problem type, so a multiclass model
    of one column never lands beside the binary versions of another (config's model_package_group wins)."""
    group = re.sub(r"[^A-Za-z0-9]+", "-", f"{name}-{s.label}-{s.problem_type}").strip("-").lower()
    return group[:63].rstrip("-")


def manifest_arguments(s: Settings) -> list[str]:
    """Preprocess's arguments for a Ground Truth output manifest (none for a table)."""
    if not s.label_attribute:
        return []
    return ["--label-attribute", s.label_attribute, "--min-confidence", f"{s.min_confidence:g}",
            "--human-annotated-only", "true" if s.human_annotated_only else "false"]


def declared_schema(s: Settings) -> str:
    """The declared schema as the Schema parameter carries it: compact JSON, or empty for none."""
    return json.dumps(s.schema, sort_keys=True, separators=(",", ":")) if s.schema else ""


def script(name: str) -> Path:
    """A processing script the product ships (processing_scripts/)."""
    return Path(str(files("processing_scripts") / name))


def training_source(feature_set: str) -> tuple[Path, str]:
    """(the training source folder, the feature set's name for train.py): the shipped training_scripts/,
    with the feature set file, when one is named, added as feature_sets/<name>.py."""
    folder = Path(str(files("training_scripts")))
    if feature_set in NO_FEATURE_SET:
        return folder, "none"
    path = Path(feature_set).expanduser()
    if path.suffix != ".py" or not path.is_file():
        raise DefinitionError(f"--feature-set {feature_set}: no such .py file (a feature set is a Python file, "
                              f"training_scripts/feature_sets/__init__.py says what it holds; or none)")
    return with_files(folder, {f"feature_sets/{path.name}": path.resolve()}), path.stem
