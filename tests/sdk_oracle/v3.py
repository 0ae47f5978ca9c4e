"""SageMaker Python SDK v3: the builder's settings as v3's own step arguments.

v3 spells jobs with ScriptProcessor (sagemaker.core), ModelTrainer and HyperparameterTuner
(sagemaker.train), ModelBuilder (sagemaker.serve) and Transformer (sagemaker.core); steps come
from sagemaker.mlops.workflow and pipeline values from sagemaker.core.workflow. As in v2, each
call on a PipelineSession returns step arguments instead of starting anything.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings

from pipelines.sdk_pipelines import environment
from sdk_oracle.adapter import Adapter

# v3 makes boto3 clients of its own, outside the session compile gives it: one when a module is
# imported, one per ProcessingStep (a local-mode client it only reads a name from). They fail
# without a region, and would look for credentials on the EC2 metadata address; neither sends a
# request, so any region does, and the metadata lookup is switched off while they are made.
IMPORT_REGION = "us-east-1"
# The framework containers' script-mode contract: where the code is and which file to run. v2's
# framework estimators write these hyperparameters; ModelTrainer's own SourceCode instead uploads
# code and SDK driver scripts at compile time, which would reach S3 and change the container contract.
SCRIPT_MODE = ("sagemaker_submit_directory", "sagemaker_program", "sagemaker_container_log_level",
               "sagemaker_region")
CODE_CHANNEL, CODE_CHANNEL_SOURCEDIR = "code", "/opt/ml/input/data/code/sourcedir.tar.gz"


class Sdk(Adapter):
    """The v3 names the builder uses, imported once and quietly, and the calls that differ from v2."""

    major = 3

    def __init__(self):
        with warnings.catch_warnings(), _own_clients_offline(IMPORT_REGION):
            warnings.simplefilter("ignore")
            from sagemaker.core import image_uris
            from sagemaker.core.helper.pipeline_variable import PipelineVariable
            from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
            from sagemaker.core.network import NetworkConfig
            from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
            from sagemaker.core.processing import ScriptProcessor
            from sagemaker.core.shapes import (ProcessingInput, ProcessingOutput, ProcessingS3Input,
                                               ProcessingS3Output)
            from sagemaker.core.transformer import Transformer
            from sagemaker.core.workflow.conditions import (ConditionGreaterThan, ConditionGreaterThanOrEqualTo,
                                                            ConditionLessThan, ConditionLessThanOrEqualTo)
            from sagemaker.core.workflow.execution_variables import ExecutionVariables
            from sagemaker.core.workflow.functions import Join, JsonGet
            from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
            from sagemaker.core.workflow.pipeline_context import PipelineSession
            from sagemaker.core.workflow.pipeline_definition_config import PipelineDefinitionConfig
            from sagemaker.core.workflow.properties import PropertyFile
            from sagemaker.mlops.workflow.condition_step import ConditionStep
            from sagemaker.mlops.workflow.fail_step import FailStep
            from sagemaker.mlops.workflow.model_step import ModelStep as _ModelStep
            from sagemaker.mlops.workflow.pipeline import Pipeline
            from sagemaker.mlops.workflow.retry import SageMakerJobExceptionTypeEnum as JobError
            from sagemaker.mlops.workflow.retry import SageMakerJobStepRetryPolicy, StepRetryPolicy
            from sagemaker.mlops.workflow.retry import StepExceptionTypeEnum as StepError
            from sagemaker.mlops.workflow.steps import (CacheConfig, ProcessingStep, TrainingStep, TransformStep,
                                                        TuningStep)
            from sagemaker.serve.model_builder import ModelBuilder
            from sagemaker.train.configs import (Compute, InputData, MetricDefinition, Networking, OutputDataConfig,
                                                 S3DataSource, StoppingCondition)
            from sagemaker.train.model_trainer import ModelTrainer
            from sagemaker.train.tuner import HyperparameterTuner
        self.__dict__.update({k: v for k, v in locals().items() if k != "self"})
        self.HyperparameterTuner = _complete_tuner(HyperparameterTuner)
        from sagemaker.core.telemetry import telemetry_logging

        # ModelTrainer.train and others report to AWS over HTTP with `requests`, outside the
        # botocore hook that keeps compile offline; the report is switched off, as under v2.
        telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None

    @contextlib.contextmanager
    def compiling(self, region: str):
        """Quiet the SDK's logs and the warnings a compile provokes by design, skip the IAM role
        check (an IAM call) that ModelTrainer makes for an explicit role unless told not to, and
        keep the SDK's own clients from looking for credentials."""
        loggers = [logging.getLogger(name) for name in ("sagemaker", "sagemaker.config", "sagemaker.core",
                                                        "sagemaker.train", "sagemaker.serve", "sagemaker.mlops")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), environment(SAGEMAKER_VALIDATE_ROLE="false"), \
                    _own_clients_offline(region):
                warnings.filterwarnings("ignore", message="Running within a PipelineSession")
                # ModelBuilder's own default for `dependencies` sets off its deprecation warning.
                warnings.filterwarnings("ignore", message="The 'dependencies' parameter is deprecated")
                yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)

    def _prepare(self, session, bucket: str) -> None:
        # default_bucket() checks with S3 that the bucket exists before it answers, and ModelBuilder
        # asks for it even when it has no code to upload; the answer is set here, as if already checked.
        session._default_bucket = bucket

    # -- jobs --

    def _processing_input(self, name, source, destination, distribution):
        return self.ProcessingInput(input_name=name, s3_input=self.ProcessingS3Input(
            s3_uri=source, local_path=destination, s3_data_type="S3Prefix", s3_input_mode="File",
            s3_data_distribution_type=distribution, s3_compression_type="None"))

    def _processing_output(self, name, source, destination):
        return self.ProcessingOutput(output_name=name, s3_output=self.ProcessingS3Output(
            s3_uri=destination, local_path=source, s3_upload_mode="EndOfJob"))

    def _trainer(self, session, *, role, image_uri, framework, entry_point, source_dir, instance_type,
                 instance_count, output_path, hyperparameters, metric_definitions, kms_key, network, channels,
                 max_runtime):
        """A ModelTrainer on the step's image for any framework: the framework containers all read
        the same script-mode hyperparameters (v2 has an estimator class per framework for that)."""
        network = dict(network)
        isolated = network.get("enable_network_isolation", False)
        if "encrypt_inter_container_traffic" in network:
            network["enable_inter_container_traffic_encryption"] = network.pop("encrypt_inter_container_traffic")
        # An isolated container cannot fetch its code from S3, so the code travels as a `code`
        # channel and the container is pointed at where SageMaker mounts it (v2 does the same).
        inputs = {**channels, **({CODE_CHANNEL: (source_dir, "FullyReplicated")} if isolated else {})}
        script_mode = dict(zip(SCRIPT_MODE, (CODE_CHANNEL_SOURCEDIR if isolated else source_dir, entry_point,
                                             logging.INFO, session.boto_region_name)))
        # JSON-encoded, as the framework containers read them and as v2 writes them; ModelTrainer
        # passes strings and pipeline variables through as they are.
        encoded = {k: v.to_string() if isinstance(v, self.PipelineVariable) else json.dumps(v)
                   for k, v in {**hyperparameters, **script_mode}.items()}
        trainer = self.ModelTrainer(
            training_image=image_uri, role=role, sagemaker_session=session,
            compute=self.Compute(instance_type=instance_type, instance_count=instance_count, volume_size_in_gb=30,
                                 **({"volume_kms_key_id": kms_key} if kms_key else {})),
            # v3's shape takes a plain int: a TimeBudget parameter is set on the captured request (_with_runtime)
            stopping_condition=self.StoppingCondition(max_runtime_in_seconds=86400),
            output_data_config=self.OutputDataConfig(s3_output_path=output_path, kms_key_id=kms_key),
            hyperparameters=encoded, networking=self.Networking(**network) if network else None,
            input_data_config=[self.InputData(channel_name=name, data_source=self._data_source(*source))
                               for name, source in inputs.items()],
        )
        if not metric_definitions:
            return trainer
        return trainer.with_metric_definitions(
            [self.MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in metric_definitions])

    def _data_source(self, uri, distribution):
        """The URI itself where it is replicated (as ModelTrainer writes it); a sharded channel needs
        the S3DataSource spelled out."""
        if distribution == "FullyReplicated":
            return uri
        return self.S3DataSource(s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type=distribution)

    def training_args(self, session, **job):
        return _with_runtime(self._trainer(session, **job).train(), session, job["max_runtime"])

    def tuning_args(self, session, *, objective_metric, objective_type, ranges, strategy, max_jobs,
                    max_parallel_jobs, random_seed, early_stopping, channels, **job):
        # The tuner takes its channels' URIs only, and writes them replicated (see _complete_tuner).
        trainer = self._trainer(session, channels={name: (uri, "FullyReplicated")
                                                   for name, (uri, _) in channels.items()}, **job)
        tuner = self.HyperparameterTuner(
            trainer, objective_metric, ranges, metric_definitions=job["metric_definitions"],
            objective_type=objective_type, strategy=strategy, max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs,
            random_seed=random_seed, early_stopping_type="Auto" if early_stopping else "Off",
        )
        tuner.max_runtime = job["max_runtime"]
        tuner.distributions = {name: distribution for name, (_, distribution) in channels.items()}
        return tuner.tune(inputs=trainer.input_data_config)

    # -- models --

    def ModelStep(self, name, *, step_args, **options):  # the builder calls it as v2's class
        """v3's ModelStep names its step `name`; v2's, `<name>-RegisterModel` or `<name>-CreateModel`.
        v2's names are kept, so a pipeline's step names, and with them its executions' history,
        caches and resumes, stay the same when it moves to v3."""
        kind = "RegisterModel" if step_args.create_model_package_request else "CreateModel"
        return self._ModelStep(f"{name}-{kind}", step_args=step_args, **options)

    def _model(self, session, *, role, image_uri, model_data, env, code, **options):
        if code is not None:
            # The serving containers' script mode, as v2 writes it: the program and the code bundle they
            # fetch (ModelBuilder adds a log level and region to registered models itself).
            env = {"SAGEMAKER_PROGRAM": code["entry_point"], "SAGEMAKER_SUBMIT_DIRECTORY": code["source_dir"]}
        return self.ModelBuilder(image_uri=image_uri, s3_model_data_url=model_data, role_arn=role,
                                 sagemaker_session=session, env_vars=env, log_level=logging.ERROR, **options)

    def _framework_fields(self, framework, framework_version) -> dict:
        # Left out: v3 cannot write them (docs/ARCHITECTURE.md, "SDK v2 and v3"); the image names both.
        return {}

    def create_model_args(self, session, *, instance_type, network_isolation, vpc_config, **model):
        network = {"enable_network_isolation": True} if network_isolation else {}
        if vpc_config:
            network.update(subnets=vpc_config["Subnets"], security_group_ids=vpc_config["SecurityGroupIds"])
        return self._model(session, instance_type=instance_type, **model,
                           **({"network": self.Networking(**network)} if network else {})).build()


def _complete_tuner(base):
    """v3's HyperparameterTuner, with what it leaves out of a tuning job put back.

    Its request shapes type the resource limits as plain ints, so a pipeline parameter (Studio's
    MaxTuningJobs) is refused; its serialiser drops every falsy value, so RandomSeed 0 (which fixes
    the trials as well as any seed) vanishes; and its training-job definition leaves out the volume
    KMS key, network isolation and inter-container encryption its ModelTrainer carries, and writes
    every channel FullyReplicated (`distributions` has the channels' own). The SDK
    builds the request; these few values are set on the request it captures, under the names the
    CreateHyperParameterTuningJob API gives them (and v2 writes).
    """

    class Tuner(base):
        def _start_tuning_job(self, inputs):
            limits = {"MaxNumberOfTrainingJobs": self.max_jobs, "MaxParallelTrainingJobs": self.max_parallel_jobs}
            self.max_jobs = self.max_parallel_jobs = 1  # stand-ins the shapes accept, replaced below
            try:
                super()._start_tuning_job(inputs)
            finally:
                self.max_jobs, self.max_parallel_jobs = limits.values()
            request = self.sagemaker_session.context.args
            config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
            config["ResourceLimits"].update(limits)
            if self.max_runtime is not None:  # the tuning job's and each trial's limit, as v2 writes them
                config["ResourceLimits"]["MaxRuntimeInSeconds"] = self.max_runtime
                definition["StoppingCondition"]["MaxRuntimeInSeconds"] = self.max_runtime
            if self.random_seed is not None:
                config["RandomSeed"] = self.random_seed
            trainer = self.model_trainer
            if trainer.compute.volume_kms_key_id:
                definition["ResourceConfig"]["VolumeKmsKeyId"] = trainer.compute.volume_kms_key_id
            if trainer.networking and trainer.networking.enable_network_isolation:
                definition["EnableNetworkIsolation"] = True
            if trainer.networking and trainer.networking.enable_inter_container_traffic_encryption:
                definition["EnableInterContainerTrafficEncryption"] = True
            for channel in definition["InputDataConfig"]:
                if channel["ChannelName"] in self.distributions:
                    channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] = \
                        self.distributions[channel["ChannelName"]]

    return Tuner


def _with_runtime(step_args, session, max_runtime):
    """A training step's arguments whose request gets `max_runtime` as its StoppingCondition: v3's shape types
    it as a plain int, so a pipeline parameter (TimeBudget) is set on the request the SDK captures."""
    if max_runtime is None:
        return step_args
    build = step_args.func

    def run(*args, **kwargs):
        result = build(*args, **kwargs)
        session.context.args["StoppingCondition"]["MaxRuntimeInSeconds"] = max_runtime
        return result
    step_args.func = run
    return step_args


def _own_clients_offline(region: str):
    return environment(AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION") or region,
                       AWS_EC2_METADATA_DISABLED="true")

