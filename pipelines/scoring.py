"""How project models score files and requests: shared by the pipeline's BatchTransform step,
`batch-transform` and `predict` (in SageMaker and locally). Import-light, so a definition can use it."""

MAX_PAYLOAD_MB = 6  # SageMaker's limit on a real-time request, and the default of a batch transform request
# Each CSV object is sent whole (SplitType None), so a header row stays with its rows and the label
# column, when present, is ignored by name. The output has one line per data row.
SCORING = {"ContentType": "text/csv", "SplitType": "None", "Accept": "text/csv", "AssembleWith": "Line"}


def transform_request(job_name: str, model_name: str, input_uri: str, output_uri: str, *,
                      instance_type: str, instance_count: int = 1) -> dict:
    """The CreateTransformJob request for scoring CSV files with a project model (see SCORING)."""
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                           "ContentType": SCORING["ContentType"], "SplitType": SCORING["SplitType"]},
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": SCORING["Accept"],
                            "AssembleWith": SCORING["AssembleWith"]},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
    }
