"""How project models score files and requests: shared by the pipeline's BatchTransform step,
`batch-transform` and `predict` (in SageMaker and locally). Import-light, so a definition can use it."""

MAX_PAYLOAD_MB = 6  # SageMaker's limit on a real-time request, and the default of a batch transform request
# Each CSV object is sent whole (SplitType None), so a header row stays with its rows and the label
# column, when present, is ignored by name. The output has one line per data row.
SCORING = {"ContentType": "text/csv", "SplitType": "None", "Accept": "text/csv", "AssembleWith": "Line"}
