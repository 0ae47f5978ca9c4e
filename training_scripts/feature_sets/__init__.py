"""Named feature sets: domain features added on top of the generic ones (features.py).

A feature set is a Python file a definition names (the tabular pipeline's `feature_set` setting,
`--feature-set my_features.py`); compile ships it here as `feature_sets/<name>.py`, in the training
code and so in the model archive's. It holds:

- REQUIRED: the raw columns it reads; it applies only when the table has them all;
- KINDS: {column: kind} re-typing inferred columns it knows better (e.g. integer codes);
- FEATURES: the names of the features it adds, in order;
- ARRAYS = True: `add` takes and returns numpy arrays (the array form, below). Serving needs it for
  its fast path; a set without it is served through pandas: reading and featurising a 10-row request
  then takes 13-34 ms instead of 0.2 ms (docs/benchmarks.md, "Serving at the floor");
- add(columns) -> {feature: values}: `columns` holds the kept raw columns, numbers and booleans parsed
  (float64, NaN where missing), a column that is the label all missing. The array form gets numpy
  arrays, categories as their keys (object arrays of stripped text, codes as whole numbers such as
  '3', None where missing), and returns float arrays; the older form gets pandas Series, categories as
  they came, and returns Series. Both training and serving call the same `add`.
"""
