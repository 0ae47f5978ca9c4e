"""The tabular pipeline's training source folder, packed as SageMaker's sourcedir.tar.gz for its jobs.

A package only so that the product ships it: the training toolkit runs `train.py` in the folder."""
