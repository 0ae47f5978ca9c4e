"""SageMaker's request shapes, as a pipeline step's Arguments carry them.

One function per API request (CreateProcessingJob, CreateTrainingJob,
CreateHyperParameterTuningJob, CreateModelPackage, CreateModel, CreateTransformJob), taking the
settings `builder` decided, values already JSON (literals or `Get`/`Std:Join`/`Std:JsonGet`
expressions). Keys come in the order SageMaker Python SDK v2 writes them and optional fields
only when set, so the definition is byte for byte the one v2 compiles
(tests/test_same_json.py); the job name is left out, as every SDK's pipeline steps do, since
SageMaker names each execution's job itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

VOLUME_GB = 30
MAX_RUNTIME = 86400  # seconds: a day, the SDKs' default stopping condition
LOG_LEVEL = 20  # logging.INFO, the framework containers' default
CODE = "/opt/ml/processing/input/code"
CODE_CHANNEL = "code"
# Where SageMaker mounts the `code` channel: an isolated container cannot fetch its code from S3.
CODE_CHANNEL_SOURCEDIR = "/opt/ml/input/data/code/sourcedir.tar.gz"
# Regions without SageMaker Debugger and its profiler (the SDK's DEBUGGER_UNSUPPORTED_REGIONS).
NO_DEBUGGER = ("us-iso-east-1", "us-isob-east-1", "ap-southeast-3", "ap-southeast-4", "eu-south-2", "me-central-1",
               "ap-south-2", "eu-central-2", "us-gov-east-1")
# The framework estimators' names, as v2's tuner records them beside the static hyperparameters
# (its generic estimator, for an image named by URI, records none).
ESTIMATORS = {"sklearn": ("SKLearn", "sagemaker.sklearn.estimator"),
              "xgboost": ("XGBoost", "sagemaker.xgboost.estimator"),
              "pytorch": ("PyTorch", "sagemaker.pytorch.estimator"),
              "tensorflow": ("TensorFlow", "sagemaker.tensorflow.estimator"),
              "huggingface": ("HuggingFace", "sagemaker.huggingface.estimator")}
# Frameworks whose estimators keep every metric as a time series too.
METRICS_TIME_SERIES = ("pytorch", "tensorflow", "huggingface")


@dataclass(frozen=True)
class Network:
    """A job's network settings, as configured; the default sets none."""

    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    isolation: bool = False
    encryption: bool = False  # between the containers of a job

    def __bool__(self) -> bool:
        return bool(self.subnets or self.isolation or self.encryption)

    def vpc(self) -> dict | None:
        return {"Subnets": list(self.subnets), "SecurityGroupIds": list(self.security_group_ids)} \
            if self.subnets else None


@dataclass(frozen=True)
class TrainingJob:
    """What every training job of a step runs: one job (Training) or each trial (Tuning)."""

    role: str
    image: str
    framework: str | None  # the dsl framework, None for an image named by URI
    entry_point: str
    source_dir: str  # s3:// URI of sourcedir.tar.gz
    instance_type: object
    instance_count: object
    output_path: str
    hyperparameters: dict  # name -> JSON value, encoded by `hyperparameters()`
    metric_definitions: list[dict]
    channels: dict  # name -> (S3 URI value, distribution)
    region: str
    kms_key: str | None
    network: Network


def _kms(key: str, value: str | None) -> dict:
    return {key: value} if value else {}


# --- processing --------------------------------------------------------------------------


def processing_job(*, role: str, image: str, instance_type, instance_count, kms_key: str | None, network: Network,
                   script: str, inputs: list[tuple], outputs: list[tuple], arguments: list) -> dict:
    """CreateProcessingJob running `script` (an s3:// URI) with python3. `inputs` are
    (name, S3 URI, local path, distribution), `outputs` (name, local path, S3 URI)."""
    code = (CODE_CHANNEL, script, CODE, "FullyReplicated")
    request = {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": instance_type, "InstanceCount": instance_count,
                                                  "VolumeSizeInGB": VOLUME_GB, **_kms("VolumeKmsKeyId", kms_key)}},
        "AppSpecification": {"ImageUri": image, **({"ContainerArguments": arguments} if arguments else {}),
                             "ContainerEntrypoint": ["python3", f"{CODE}/{script.rsplit('/', 1)[-1]}"]},
        "RoleArn": role,
        "ProcessingInputs": [_processing_input(*i) for i in [*inputs, code]],
    }
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": [_processing_output(*o) for o in outputs],
                                             **_kms("KmsKeyId", kms_key)}
    if network:
        request["NetworkConfig"] = {
            "EnableNetworkIsolation": network.isolation,
            **({"EnableInterContainerTrafficEncryption": True} if network.encryption else {}),
            **({"VpcConfig": {"SecurityGroupIds": list(network.security_group_ids), "Subnets": list(network.subnets)}}
               if network.subnets else {}),
        }
    return request


def _processing_input(name: str, uri, local_path: str, distribution: str) -> dict:
    return {"InputName": name, "AppManaged": False, "S3Input": {
        "S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
        "S3DataDistributionType": distribution, "S3CompressionType": "None"}}


def _processing_output(name: str, local_path: str, uri) -> dict:
    return {"OutputName": name, "AppManaged": False,
            "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"}}


# --- training ----------------------------------------------------------------------------


def hyperparameters(job: TrainingJob, *, job_name: str | None = None) -> dict:
    """The step's hyperparameters and the framework containers' script mode (which file of which
    bundle to run), each as the string the containers JSON-decode. A tuning job also carries a job
    name (the SDK writes one at compile time; here `<pipeline>-<step>`, never the real job's)."""
    isolated = job.network.isolation
    script_mode = {
        "sagemaker_submit_directory": CODE_CHANNEL_SOURCEDIR if isolated else job.source_dir,
        "sagemaker_program": job.entry_point,
        "sagemaker_container_log_level": LOG_LEVEL,
        **({"sagemaker_job_name": job_name} if job_name else {}),
        "sagemaker_region": job.region,
    }
    return {**job.hyperparameters, **{k: json.dumps(v) for k, v in script_mode.items()}}


def _channels(job: TrainingJob) -> list[dict]:
    """The data channels; and the code, where an isolated container cannot fetch it."""
    channels = dict(job.channels)
    if job.network.isolation:
        channels[CODE_CHANNEL] = (job.source_dir, "FullyReplicated")
    return [{"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                             "S3DataDistributionType": distribution}}, "ChannelName": name}
            for name, (uri, distribution) in channels.items()]


def _security(job: TrainingJob) -> dict:
    network = job.network
    return {**({"VpcConfig": network.vpc()} if network.subnets else {}),
            **({"EnableNetworkIsolation": True} if network.isolation else {}),
            **({"EnableInterContainerTrafficEncryption": True} if network.encryption else {})}


def training_job(job: TrainingJob, stopping_condition: dict) -> dict:
    """CreateTrainingJob in script mode, with the Debugger hook and system profiling the SDK's
    estimators ask for where the region has them."""
    algorithm = {"TrainingInputMode": "File", "TrainingImage": job.image, "MetricDefinitions": job.metric_definitions,
                 **({"EnableSageMakerMetricsTimeSeries": True} if job.framework in METRICS_TIME_SERIES else {})}
    request = {
        "AlgorithmSpecification": algorithm,
        "OutputDataConfig": {"S3OutputPath": job.output_path, **_kms("KmsKeyId", job.kms_key)},
        "StoppingCondition": stopping_condition,
        "ResourceConfig": {"VolumeSizeInGB": VOLUME_GB, **_kms("VolumeKmsKeyId", job.kms_key),
                           "InstanceCount": job.instance_count, "InstanceType": job.instance_type},
        "RoleArn": job.role,
        "InputDataConfig": _channels(job),
        "HyperParameters": hyperparameters(job),
        **_security(job),
    }
    if job.region not in NO_DEBUGGER:
        request["DebugHookConfig"] = {"S3OutputPath": job.output_path, "CollectionConfigurations": []}
    profiled = job.region not in NO_DEBUGGER and not str(job.instance_type).startswith("ml.trn")
    request["ProfilerConfig"] = {"S3OutputPath": job.output_path, "DisableProfiler": False} if profiled \
        else {"DisableProfiler": True}
    return request


def tuning_job(job: TrainingJob, *, strategy: str, limits: dict, early_stopping: bool, random_seed: int | None,
               objective: dict, ranges: dict, stopping_condition: dict, job_name: str) -> dict:
    """CreateHyperParameterTuningJob over `job`, with v2's tuner's names: the training resources
    as HyperParameterTuningResourceConfig, and the estimator's class beside the hyperparameters."""
    estimator = dict(zip(("sagemaker_estimator_class_name", "sagemaker_estimator_module"),
                         map(json.dumps, ESTIMATORS.get(job.framework, ()))))
    config = {"Strategy": strategy, "ResourceLimits": limits, "TrainingJobEarlyStoppingType": "Auto" if early_stopping else "Off",
              **({"RandomSeed": random_seed} if random_seed is not None else {}),
              "HyperParameterTuningJobObjective": objective, "ParameterRanges": ranges}
    definition = {
        "StaticHyperParameters": {**hyperparameters(job, job_name=job_name), **estimator},
        "RoleArn": job.role,
        "OutputDataConfig": {"S3OutputPath": job.output_path, **_kms("KmsKeyId", job.kms_key)},
        "StoppingCondition": stopping_condition,
        "HyperParameterTuningResourceConfig": {**_kms("VolumeKmsKeyId", job.kms_key),
                                               "InstanceCount": job.instance_count, "InstanceType": job.instance_type,
                                               "VolumeSizeInGB": VOLUME_GB},
        "AlgorithmSpecification": {"TrainingInputMode": "File", "MetricDefinitions": job.metric_definitions,
                                   "TrainingImage": job.image},
        "InputDataConfig": _channels(job),
        **_security(job),
    }
    return {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": definition}


# --- models ------------------------------------------------------------------------------


def container(image: str, environment: dict, model_data, framework: str | None = None,
              framework_version: str | None = None) -> dict:
    return {"Image": image, "Environment": environment, "ModelDataUrl": model_data,
            **({"Framework": framework, "FrameworkVersion": framework_version} if framework else {})}


def model_package(*, group: str, description: str | None, metrics_uri, metadata: dict | None, container: dict,
                  content_types: list[str], instance_types: list[str], approval_status) -> dict:
    """CreateModelPackage: a version in `group`, with its model-quality report."""
    request = {"ModelPackageGroupName": group, **({"ModelPackageDescription": description} if description else {}),
               "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                                "S3Uri": metrics_uri}},
                                "Bias": {}, "Explainability": {}}}
    if metadata:
        request["CustomerMetadataProperties"] = metadata
    request["InferenceSpecification"] = {
        "Containers": [container], "SupportedContentTypes": content_types, "SupportedResponseMIMETypes": content_types,
        "SupportedRealtimeInferenceInstanceTypes": instance_types, "SupportedTransformInstanceTypes": instance_types}
    return {**request, "ModelApprovalStatus": approval_status, "SkipModelValidation": "None"}


def model(*, role: str, container: dict, network: Network) -> dict:
    """CreateModel with one container."""
    return {"ExecutionRoleArn": role, "PrimaryContainer": container,
            **({"VpcConfig": network.vpc()} if network.subnets else {}),
            **({"EnableNetworkIsolation": True} if network.isolation else {})}


def transform_job(*, model_name, data, content_type: str, split_type: str, output_path, kms_key: str | None,
                  assemble_with: str, accept: str, instance_type, instance_count, max_payload: int) -> dict:
    """CreateTransformJob over every object under `data`."""
    return {
        "ModelName": model_name,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}},
                           "ContentType": content_type, "SplitType": split_type},
        "TransformOutput": {"S3OutputPath": output_path, **_kms("KmsKeyId", kms_key), "AssembleWith": assemble_with,
                            "Accept": accept},
        "TransformResources": {"InstanceCount": instance_count, "InstanceType": instance_type,
                               **_kms("VolumeKmsKeyId", kms_key)},
        "MaxPayloadInMB": max_payload,
    }
