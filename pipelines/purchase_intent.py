"""The purchase-likelihood pipeline: will this browsing session end in a purchase?

Preprocess -> Tune (or Train) -> Evaluate -> QualityGate -> Register | Fail.
Nothing in it is specific to the shoppers table: Preprocess writes the schema
of whatever table it is given, the model builds its features from that schema
(plus the `shoppers` feature set, chosen in config.toml, where the table has
its columns), and the problem type and label come from the config; everything
that depends on them comes from `pipelines.problems`.
"""
from __future__ import annotations

import re
from pathlib import Path

from pipelines.config import Config
from pipelines.dsl import Continuous, DefinitionError, Integer, Objective, Pipeline, Report, Sharded
from pipelines.problems import DEFAULT_THRESHOLD, PROBLEMS, THRESHOLD_PATTERN
from pipelines.scoring import MAX_PAYLOAD_MB, SCORING

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
NAME = "purchase-intent"  # its settings are [pipeline.purchase-intent] of config.toml
SYNTHETIC_DATA = "data/online_shoppers_synthetic.csv"  # under the pipeline's prefix; `run --local` writes it
SYNTHETIC_ROWS = 12_330  # the size of the real data set


def definition(cfg: Config) -> Pipeline:
    problem = PROBLEMS[cfg.problem_type]
    p = Pipeline(NAME, display_name="Purchase intent",
                 description="Predicts the likelihood that a browsing session ends in a purchase (XGBoost).")
    if not cfg.label:
        raise DefinitionError(f"no label: set `label` under [pipeline.{NAME}] in config.toml or pass --label COLUMN")
    default_data = cfg.input_data or f"{cfg.s3_root}/{SYNTHETIC_DATA}"

    input_data = p.parameter("InputData", default_data,
                             description="S3 URI of the raw sessions: one CSV/Parquet file or a prefix")
    processing_type = p.parameter("ProcessingInstanceType", cfg.processing_instance_type)
    processing_count = p.parameter("ProcessingInstanceCount", 1)
    training_type = p.parameter("TrainingInstanceType", cfg.training_instance_type)
    training_count = p.parameter("TrainingInstanceCount", 1,
                                 description="Instances each training job trains one model across (XGBoost's "
                                             "collective); each reads its share of the data")
    max_jobs = p.parameter("MaxTuningJobs", cfg.max_tuning_jobs)
    max_parallel = p.parameter("MaxParallelTuningJobs", cfg.max_parallel_tuning_jobs)
    time_budget = p.parameter("TimeBudget", cfg.time_budget_seconds,
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
    schema = p.parameter("Schema", cfg.declared_schema,
                         description='Declared column kinds, JSON: {"column": "number|code|category|boolean|'
                                     'datetime|dropped"} overrides those inferred, a whole schema.json replaces them')
    if cfg.batch_transform:
        scoring_data = p.parameter(
            "ScoringData", default_data,
            description="S3 URI (CSV file or prefix) scored after registration; rows need a header, "
                        "and a label column is ignored. Default: the input data")

    task = ["--problem-type", cfg.problem_type, "--label", cfg.label]
    prep = p.processing(
        "Preprocess", "processing_scripts/preprocess.py",
        inputs={"raw": Sharded(input_data)},  # each instance reads its own objects: split big inputs into several
        outputs=["train", "validation", "test", "profile", "schema"],
        # Paths are spelled out (they are the scripts' defaults) so the local runner can map them
        # where it has no mount namespace to put the job's directory at /opt/ml.
        arguments=[*task, "--seed", seed, "--schema", schema, "--positive-class", cfg.positive_class or "",
                   "--input-dir", "/opt/ml/processing/input/raw",
                   "--output-dir", "/opt/ml/processing/output", "--failure-file", "/opt/ml/output/message"],
        instance_type=processing_type, instance_count=processing_count,
    )

    training = dict(
        channels={"train": Sharded(prep.out.train), "validation": Sharded(prep.out.validation),
                  "schema": prep.out.schema},
        hyperparameters={"problem_type": cfg.problem_type, "label": cfg.label, "feature_set": cfg.feature_set,
                         "time_budget": time_budget, "families": cfg.families},
        metrics=[problem.tuning_metric],
        instance_type=training_type, instance_count=training_count, max_runtime=time_budget,
    )
    if cfg.tuning:
        # A trial plans for its share of the budget: TimeBudget x MaxParallelTuningJobs / MaxTuningJobs
        training["hyperparameters"].update(tuning_jobs=max_jobs, tuning_parallel=max_parallel)
        train = p.tuning(
            "Tune", "training_scripts", **training,
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
        train = p.training("Train", "training_scripts", **training)

    evaluate = p.processing(
        "Evaluate", "processing_scripts/evaluate.py", image="xgboost",
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
        "Register", train.model, group=cfg.model_package_group or model_group(cfg), report=report,
        approval_status=approval,
        inference_instance_type=cfg.inference_instance_type,
        description=f"{cfg.problem_type} XGBoost model of {cfg.label!r} from pipeline {NAME}",
        metadata={"problem_type": cfg.problem_type, "label": cfg.label},
    )
    fail = p.fail("Fail", f"Quality gate failed: test {problem.gate_metric} =", metric,
                  "is not", ">=" if problem.gate_direction == "Maximize" else "<=", minimum,
                  "from QualityThreshold", threshold)
    passed = metric >= minimum if problem.gate_direction == "Maximize" else metric <= minimum
    then = [register]
    if cfg.batch_transform:
        # Score with exactly the registered artifact, as batch-transform and predict do (pipelines.scoring:
        # each CSV object whole, so its header travels with every row; docs/ARCHITECTURE.md, "Scoring data").
        model = p.model("ScoringModel", register.model_data, instance_type=cfg.inference_instance_type)
        then += [model, p.transform(
            "BatchTransform", model, data=scoring_data, instance_type=cfg.inference_instance_type,
            content_type=SCORING["ContentType"], split_type=SCORING["SplitType"], accept=SCORING["Accept"],
            assemble_with=SCORING["AssembleWith"], max_payload_mb=MAX_PAYLOAD_MB)]
    p.condition("QualityGate", passed, then=then, otherwise=[fail])
    return p


def model_group(cfg: Config) -> str:
    """One model package group per model: the pipeline, the label and the problem type, so a multiclass model
    of one column never lands beside the binary versions of another (config's model_package_group wins)."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", f"{NAME}-{cfg.label}-{cfg.problem_type}").strip("-").lower()
    return name[:63].rstrip("-")


def example_data(dest: Path) -> Path:
    """What `run --local` puts at InputData's default when it is not in the local store yet:
    sessions generated with the real data set's schema and size, from a fixed seed."""
    from pipelines.data import generate, write_csv

    return write_csv(generate(SYNTHETIC_ROWS, seed=0), dest)
