"""Named feature sets: domain features added on top of the generic ones (features.py).

A feature set is a Python file a definition names (the tabular pipeline's `feature_set` setting,
`--feature-set my_features.py`); compile ships it here as `feature_sets/<name>.py`, in the training
code and so in the model archive's. It holds:

- REQUIRED: the raw columns it reads; it applies only when the table has them all;
- KINDS: {column: kind} re-typing inferred columns it knows better (e.g. integer codes);
- FEATURES: the names of the features it adds, in order;
- add(columns) -> {feature: Series}: `columns` holds the kept raw columns, numbers and
  booleans parsed, categories as text; a column that is the label is all missing.
"""
