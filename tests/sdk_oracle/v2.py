"""SageMaker Python SDK v2: the builder's settings as v2's own step arguments.

v2 spells a job as an estimator, processor, model or transformer whose run/fit/register/create
call, on a PipelineSession, returns the step arguments instead of starting anything.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings

from sdk_oracle.adapter import Adapter, encryption

# dsl framework -> v2's estimator and model classes, whose script mode the JSON comes from.
ESTIMATORS = {"sklearn": "SKLearn", "xgboost": "XGBoost", "pytorch": "PyTorch", "tensorflow": "TensorFlow",
              "huggingface": "HuggingFace"}
MODELS = {"sklearn": "SKLearnModel", "xgboost": "XGBoostModel"}  # dsl.CODE_BESIDE_MODEL


class Sdk(Adapter):
    """The v2 names the builder uses, imported once and quietly, and the calls that differ from v3."""

    major = 2

    def __init__(self):
        # `import sagemaker` warns that v2 is deprecated (SageMakerV2DeprecationWarning, a FutureWarning):
        # the SDK's own switch keeps it off the user's terminal, the filter catches a release without it.
        os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        for name in ("sagemaker", "sagemaker.config"):
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sagemaker import image_uris
            from sagemaker.estimator import Estimator
            from sagemaker.huggingface import HuggingFace
            from sagemaker.inputs import TrainingInput
            from sagemaker.model import Model
            from sagemaker.model_metrics import MetricsSource, ModelMetrics
            from sagemaker.network import NetworkConfig
            from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
            from sagemaker.pytorch import PyTorch
            from sagemaker.sklearn import SKLearn, SKLearnModel
            from sagemaker.tensorflow import TensorFlow
            from sagemaker.transformer import Transformer
            from sagemaker.tuner import (CategoricalParameter, ContinuousParameter, HyperparameterTuner,
                                         IntegerParameter)
            from sagemaker.workflow.condition_step import ConditionStep
            from sagemaker.workflow.conditions import (ConditionGreaterThan, ConditionGreaterThanOrEqualTo,
                                                       ConditionLessThan, ConditionLessThanOrEqualTo)
            from sagemaker.workflow.entities import PipelineVariable
            from sagemaker.workflow.execution_variables import ExecutionVariables
            from sagemaker.workflow.fail_step import FailStep
            from sagemaker.workflow.functions import Join, JsonGet
            from sagemaker.workflow.model_step import ModelStep
            from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
            from sagemaker.workflow.pipeline import Pipeline
            from sagemaker.workflow.pipeline_context import PipelineSession
            from sagemaker.workflow.pipeline_definition_config import PipelineDefinitionConfig
            from sagemaker.workflow.properties import PropertyFile
            from sagemaker.workflow.retry import SageMakerJobExceptionTypeEnum as JobError
            from sagemaker.workflow.retry import SageMakerJobStepRetryPolicy, StepRetryPolicy
            from sagemaker.workflow.retry import StepExceptionTypeEnum as StepError
            from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep, TuningStep
            from sagemaker.xgboost import XGBoost, XGBoostModel
        self.__dict__.update({k: v for k, v in locals().items() if k != "self"})
        from sagemaker.telemetry import telemetry_logging

        # estimator.fit reports to AWS over HTTP with `requests`, outside the botocore hook that keeps
        # compile offline. The SDK's switch for it is a non-empty SDK config, which costs seconds per
        # compile (see Adapter.session), so the report is switched off here instead.
        telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None

    @contextlib.contextmanager
    def compiling(self, region: str):
        """Quiet the warnings a compile provokes by design."""
        with warnings.catch_warnings():
            # A PipelineSession starts no job: not starting jobs is the point of compiling.
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            # ModelStep itself builds the CreateModelStep this deprecation is about; ModelStep is what we use.
            warnings.filterwarnings("ignore", message="We are deprecating the use of CreateModelStep")
            yield

    # -- jobs --

    def _processing_input(self, name, source, destination, distribution):
        return self.ProcessingInput(source=source, destination=destination, input_name=name,
                                    s3_data_distribution_type=distribution)

    def _processing_output(self, name, source, destination):
        return self.ProcessingOutput(output_name=name, source=source, destination=destination)

    def _estimator(self, session, *, role, image_uri, framework, entry_point, source_dir, instance_type,
                   instance_count, output_path, hyperparameters, metric_definitions, kms_key, network, max_runtime):
        """The framework's estimator (script mode), so its hyperparameters are the SDK's own; the
        generic one for an image named by URI."""
        common = dict(
            entry_point=entry_point, source_dir=source_dir, role=role, image_uri=image_uri,
            instance_type=instance_type, instance_count=instance_count, output_path=output_path,
            hyperparameters=hyperparameters,
            metric_definitions=metric_definitions, sagemaker_session=session, **encryption(kms_key), **network,
            **({"max_run": max_runtime} if max_runtime is not None else {}),
        )
        if framework is None:
            return self.Estimator(**common)
        cls = getattr(self, ESTIMATORS[framework.framework])
        if framework.framework == "huggingface":
            base, version = re.fullmatch(r"(pytorch|tensorflow)(.+)", framework.base).groups()
            return cls(transformers_version=framework.version, **{f"{base}_version": version},
                       py_version=framework.py_version, **common)
        # TensorFlow would add a model_dir hyperparameter of its own: the script gets only what the step names.
        extra = {"model_dir": False} if framework.framework == "tensorflow" else {}
        return cls(framework_version=framework.version, py_version=framework.py_version or "py3", **extra, **common)

    def _inputs(self, channels: dict) -> dict:
        return {name: self.TrainingInput(uri, distribution=distribution)
                for name, (uri, distribution) in channels.items()}

    def training_args(self, session, *, channels, **job):
        return self._estimator(session, **job).fit(inputs=self._inputs(channels))

    def tuning_args(self, session, *, channels, objective_metric, objective_type, ranges, strategy, max_jobs,
                    max_parallel_jobs, random_seed, early_stopping, **job):
        tuner = self.HyperparameterTuner(
            self._estimator(session, **job), objective_metric, ranges,
            metric_definitions=job["metric_definitions"], objective_type=objective_type, strategy=strategy,
            max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs, random_seed=random_seed,
            max_runtime_in_seconds=job["max_runtime"], early_stopping_type="Auto" if early_stopping else "Off",
        )
        return tuner.fit(inputs=self._inputs(channels))

    # -- models --

    def _model(self, session, *, role, image_uri, model_data, env, code, **network):
        """A Model serving the archive's own code, or the framework's model class for code named by
        entry_point (its env then comes from the SDK's script mode)."""
        common = dict(image_uri=image_uri, model_data=model_data, role=role, sagemaker_session=session, **network)
        if code is None:
            return self.Model(env=env, **common)
        framework = code["framework"]
        return getattr(self, MODELS[framework.framework])(
            entry_point=code["entry_point"], source_dir=code["source_dir"], framework_version=framework.version,
            py_version=framework.py_version or "py3", code_location=code["code_location"], **common)

    def create_model_args(self, session, *, instance_type, network_isolation, vpc_config, **model):
        model = self._model(session, vpc_config=vpc_config, **model,
                            **({"enable_network_isolation": True} if network_isolation else {}))
        return model.create(instance_type=instance_type)
