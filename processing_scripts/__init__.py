"""Processing scripts that run inside SageMaker's containers, one file per job (the tabular pipeline's).

A package only so that the product ships them: a job runs a script as a file, never imports this."""
