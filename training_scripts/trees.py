"""Every tree of the ensemble in one XGBoost booster, for serving: one call predicts them all.

The ensemble's tree families are 5 folds each: XGBoost boosters, HistGradientBoosting models and forests of
up to 200 trees. Called one by one they cost more than the trees: scikit-learn predicts a forest a tree at
a time from Python (about 200 ms for a 10-row request), and each XGBoost call has its own fixed cost. So at
load time the serving code copies every tree into one booster of the environment's own xgboost, each tree
adding to one output: a fold's margin per class where a link function follows (XGBoost, HistGradient-
Boosting), or a class's share of the mean (the forests). The archive itself is unchanged. The copy decides
every row as the source does:

- XGBoost's own trees are copied as they are;
- a number goes left when ``float32(x) <= threshold`` (float64) in scikit-learn, and when
  ``x < c`` in XGBoost, with c the smallest float32 above the threshold: the same rows for every x;
- a missing value goes where scikit-learn sends it (HistGradientBoosting's ``missing_go_to_left``; a
  forest's rows are filled below every threshold, so missing goes left);
- a HistGradientBoosting category split lists, for each code a request can carry, the side
  scikit-learn sends it to (it ordinal-encodes categories; an unknown one takes the missing side).

Leaves are summed in float32, as XGBoost sums its own; against scikit-learn's float64 that moves a forest's
probability by a few millionths. families.Served checks every family of the booster against its own
predict on probe rows at the trees' thresholds, and serves a family that disagrees by its own predict.
"""
import struct

import numpy as np

MAX_CODE = 1024  # category codes a split is written for (features.py's vocabularies hold at most 1,000 values)
_INT32 = 2147483647


# --- trees as arrays --------------------------------------------------------------------------------------


class Tree:
    """One tree of one output: children (-1 at leaves), the feature and the XGBoost threshold of each split
    (go left when x < threshold), where a missing value goes, the categories that go right, and leaf values.
    Nodes are renumbered breadth first, siblings side by side: XGBoost's predictor finds a right child at
    its left sibling's number plus one. `original[i]` is node i's number in the source tree."""

    def __init__(self, left, right, feature, threshold, default_left, value, categories=None):
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        order, number = [0], np.full(len(left), -1)
        number[0] = 0
        for node in order:  # grows as it goes: breadth first
            if left[node] >= 0:
                number[left[node]], number[right[node]] = len(order), len(order) + 1
                order += [left[node], right[node]]
        self.original = np.asarray(order)
        leaf = left[self.original] < 0
        self.left = np.where(leaf, -1, number[np.where(leaf, 0, left[self.original])]).astype(np.int32)
        self.right = np.where(leaf, -1, number[np.where(leaf, 0, right[self.original])]).astype(np.int32)
        self.feature = np.where(leaf, 0, np.asarray(feature)[self.original]).astype(np.int32)
        # XGBoost keeps a leaf's value where a split keeps its threshold
        self.condition = np.where(leaf, np.asarray(value)[self.original],
                                  np.asarray(threshold)[self.original]).astype(np.float32)
        self.default_left = np.where(leaf, 0, np.broadcast_to(default_left, left.shape)[self.original]).astype(np.uint8)
        self.categories = {int(number[node]): codes for node, codes in (categories or {}).items()}


def below_or_equal(threshold):
    """c such that, for every float32 x, ``x < c`` exactly when ``x <= threshold`` (a float64)."""
    t = np.asarray(threshold, dtype=np.float64)
    f = t.astype(np.float32)
    return np.where(f.astype(np.float64) > t, f, np.nextafter(f, np.float32(np.inf)))


def xgboost_trees(boosters):
    """([(Tree, output)], outputs per booster): the boosters' trees as they are, booster b's output k (its
    class, for multiclass) at b * K + k."""
    out, width = [], 1
    for b, source in enumerate(boosters):
        model = ubj_load(bytes(source.save_raw("ubj")))["learner"]["gradient_booster"]["model"]
        if int(model["gbtree_model_param"].get("num_parallel_tree", "1")) != 1:
            raise ValueError("boosters of parallel trees (random forests in XGBoost) are not copied")
        info = [int(k) for k in model["tree_info"]]
        width = 1 + max(info, default=0)
        for doc, k in zip(model["trees"], info):
            conditions = np.asarray(doc["split_conditions"], dtype=np.float32)
            nodes = np.asarray(doc["categories_nodes"], dtype=int)
            starts, sizes = np.asarray(doc["categories_segments"], dtype=int), np.asarray(doc["categories_sizes"])
            categories = {int(n): [int(c) for c in doc["categories"][s:s + z]] for n, s, z in zip(nodes, starts, sizes)}
            out.append((Tree(doc["left_children"], doc["right_children"], doc["split_indices"], conditions,
                             doc["default_left"], conditions, categories), b * width + k))
    return out, width


def forest_trees(members, task):
    """[(Tree, output)] of a family of forests (ExtraTrees, RandomForest): each fold's trees averaged, the folds
    averaged, so a leaf holds its value over (trees x folds). Binary: the positive class's probability."""
    out = []
    for member in members:
        estimators = member["model"].estimators_
        scale = 1.0 / (len(estimators) * len(members))
        for estimator in estimators:
            t = estimator.tree_
            values = t.value[:, 0, :].astype(np.float64)
            if task.classify:
                total = values.sum(axis=1, keepdims=True)
                values = values / np.where(total == 0, 1.0, total)  # DecisionTreeClassifier.predict_proba
            outputs = [1] if task.problem_type == "binary" else range(values.shape[1])
            threshold = below_or_equal(t.threshold)
            for k, column in enumerate(outputs):
                out.append((Tree(t.children_left, t.children_right, t.feature, threshold, 1,
                                 values[:, column] * scale), k))
    return out


def histgb_trees(members, task):
    """([(Tree, output)], intercepts): HistGradientBoosting's trees, fold f's output k at f * K + k (a link
    function follows per fold), with each output's baseline as its intercept."""
    out, intercepts = [], []
    for f, member in enumerate(members):
        model = member["model"]
        order, categories = _inputs(model, member["columns"])
        baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
        width = len(baseline)
        intercepts.extend(baseline)
        for iteration in model._predictors:
            for k, predictor in enumerate(iteration):
                nodes = predictor.nodes
                leaf = nodes["is_leaf"] == 1
                split = {}
                for node in np.flatnonzero((nodes["is_categorical"] == 1) & ~leaf):
                    n = nodes[node]
                    split[int(node)] = _right_codes(predictor.raw_left_cat_bitsets[n["bitset_idx"]],
                                                    categories[n["feature_idx"]], bool(n["missing_go_to_left"]))
                out.append((Tree(np.where(leaf, -1, nodes["left"].astype(np.int64)),
                                 np.where(leaf, -1, nodes["right"].astype(np.int64)),
                                 order[np.where(leaf, 0, nodes["feature_idx"])], below_or_equal(nodes["num_threshold"]),
                                 nodes["missing_go_to_left"], nodes["value"], split), f * width + k))
    return out, np.asarray(intercepts)


def _inputs(model, columns):
    """(feature array column of each of the model's inputs, {input: the raw codes its categories stand for}).
    scikit-learn puts categorical inputs first and ordinal-encodes them (unknown values become missing)."""
    columns = np.asarray(columns)
    preprocessor = getattr(model, "_preprocessor", None)
    if preprocessor is None:
        return columns, {}
    order, categories = [], {}
    for name, transformer, selected in preprocessor.transformers_:
        if name == "remainder":
            continue
        picked = np.flatnonzero(selected) if np.asarray(selected).dtype == bool else np.asarray(selected, dtype=int)
        for i, j in enumerate(picked):
            if hasattr(transformer, "categories_"):
                categories[len(order)] = transformer.categories_[i]
            order.append(columns[j])
    return np.asarray(order), categories


def _right_codes(left_bitset, codes, missing_left):
    """The raw codes a category split sends right: those whose encoding is not in the left set, and, when
    missing values go right, every code it never saw (which it reads as missing)."""
    seen = {int(v): e for e, v in enumerate(codes) if np.isfinite(v)}
    right = [c for c, e in seen.items() if not (int(left_bitset[e // 32]) >> (e % 32)) & 1]
    if not missing_left:
        right += [c for c in range(MAX_CODE) if c not in seen]
    return sorted(right)


def probe_rows(pieces, types, rows=512, seed=0):
    """Rows that test the booster where a copy can go wrong: each number at its splits' thresholds and just
    below them, and missing; each category (type "c") at the codes its splits list, at others, and missing."""
    rng = np.random.default_rng(seed)
    values = [[np.nan, 0.0, 1.0, -1.0] for _ in types]
    for tree, _ in pieces:
        for node in np.flatnonzero(tree.left >= 0)[:64]:  # enough of each tree's splits
            j = tree.feature[node]
            if node in tree.categories:
                values[j] += [float(c) for c in tree.categories[node][:8]]
            else:
                values[j] += [float(tree.condition[node]), float(np.nextafter(tree.condition[node], np.float32(-1e38)))]
    out = np.empty((rows, len(types)), dtype=np.float32)
    for j, candidates in enumerate(values):
        candidates = np.asarray(candidates, dtype=np.float32)
        if types[j] == "c":  # a category's code is a whole number from 0 (or missing)
            candidates = np.concatenate([candidates[np.isnan(candidates) | ((candidates >= 0) & (candidates % 1 == 0))],
                                         rng.integers(0, 300, 8)]).astype(np.float32)
        out[:, j] = rng.choice(candidates, rows)
    return out


# --- the booster ------------------------------------------------------------------------------------------


def booster(trees, n_features, n_outputs):
    """An XGBoost booster (reg:squarederror, base score 0, one output per tree's index) of `trees`, written as
    the running xgboost writes its own models: its layout is taken from a one-round model it trains."""
    import xgboost as xgb

    template = xgb.train({"objective": "reg:squarederror", "base_score": 0.0, "max_depth": 1, "nthread": 1},
                         xgb.DMatrix(np.zeros((2, n_features)), label=np.zeros((2, n_outputs))), 1)
    doc = ubj_load(bytes(template.save_raw("ubj")))
    model = doc["learner"]["gradient_booster"]["model"]
    kinds = {name: value.dtype for name, value in model["trees"][0].items() if isinstance(value, np.ndarray)}
    model["trees"] = [_tree_doc(tree, i, n_features, kinds, model["trees"][0]["tree_param"])
                      for i, (tree, _) in enumerate(trees)]
    model["tree_info"] = [int(output) for _, output in trees]
    model["gbtree_model_param"]["num_trees"] = str(len(trees))
    if "iteration_indptr" in model:
        model["iteration_indptr"] = [0, len(trees)]
    out = xgb.Booster()
    out.load_model(bytearray(ubj_dump(doc)))
    return out


def _tree_doc(tree, i, n_features, kinds, param):
    n = len(tree.left)
    parents = np.full(n, _INT32, dtype=np.int64)
    inner = np.flatnonzero(tree.left >= 0)
    parents[tree.left[inner]] = inner
    parents[tree.right[inner]] = inner
    nodes = sorted(tree.categories)
    cats = [tree.categories[node] for node in nodes]
    split_type = np.zeros(n)
    split_type[nodes] = 1
    arrays = {"base_weights": np.zeros(n), "categories": np.concatenate([np.zeros(0), *cats]),
              "categories_nodes": nodes, "categories_segments": np.cumsum([0] + [len(c) for c in cats])[:-1],
              "categories_sizes": [len(c) for c in cats], "default_left": tree.default_left,
              "left_children": tree.left, "loss_changes": np.zeros(n), "parents": parents,
              "right_children": tree.right, "split_conditions": tree.condition, "split_indices": tree.feature,
              "split_type": split_type, "sum_hessian": np.ones(n)}
    doc = {name: np.asarray(arrays[name]).astype(kind) for name, kind in kinds.items()}
    doc["id"] = i
    doc["tree_param"] = {**param, "num_deleted": "0", "num_feature": str(n_features), "num_nodes": str(n)}
    return doc


# --- Universal Binary JSON, as xgboost reads and writes it (typed arrays for the trees) --------------------

_NUMBERS = {"i": ">i1", "U": ">u1", "I": ">i2", "l": ">i4", "L": ">i8", "d": ">f4", "D": ">f8"}
_MARKERS = {np.dtype(v).newbyteorder("="): k for k, v in _NUMBERS.items()}


def ubj_load(data):
    value, _ = _read(memoryview(data), 0)
    return value


def _read(buf, i):
    marker = chr(buf[i])
    if marker == "{":
        out, i = {}, i + 1
        while chr(buf[i]) != "}":
            size, i = _read(buf, i)
            key, i = bytes(buf[i:i + size]).decode(), i + size
            out[key], i = _read(buf, i)
        return out, i + 1
    if marker == "[":
        i += 1
        if chr(buf[i]) == "$":  # a typed array: [$<type>#<count><values>
            kind = np.dtype(_NUMBERS[chr(buf[i + 1])])
            count, i = _read(buf, i + 3)
            end = i + count * kind.itemsize
            return np.frombuffer(buf[i:end], dtype=kind).astype(kind.newbyteorder("=")), end
        out = []
        if chr(buf[i]) == "#":
            count, i = _read(buf, i + 1)
            for _ in range(count):
                item, i = _read(buf, i)
                out.append(item)
            return out, i
        while chr(buf[i]) != "]":
            item, i = _read(buf, i)
            out.append(item)
        return out, i + 1
    if marker == "S":
        size, i = _read(buf, i + 1)
        return bytes(buf[i:i + size]).decode(), i + size
    if marker in "TF":
        return marker == "T", i + 1
    kind = np.dtype(_NUMBERS[marker])
    return np.frombuffer(buf[i + 1:i + 1 + kind.itemsize], dtype=kind)[0].item(), i + 1 + kind.itemsize


def ubj_dump(value):
    out = []
    _write(value, out)
    return b"".join(out)


def _write(value, out):
    if isinstance(value, dict):
        out.append(b"{")
        for key, item in value.items():
            encoded = key.encode()
            out.append(b"L" + struct.pack(">q", len(encoded)) + encoded)
            _write(item, out)
        out.append(b"}")
    elif isinstance(value, np.ndarray):
        marker = _MARKERS[value.dtype]
        out.append(b"[$" + marker.encode() + b"#L" + struct.pack(">q", len(value))
                   + value.astype(_NUMBERS[marker]).tobytes())
    elif isinstance(value, list):
        out.append(b"[")
        for item in value:
            _write(item, out)
        out.append(b"]")
    elif isinstance(value, str):
        encoded = value.encode()
        out.append(b"SL" + struct.pack(">q", len(encoded)) + encoded)
    elif isinstance(value, bool):
        out.append(b"T" if value else b"F")
    elif isinstance(value, int):
        out.append(b"L" + struct.pack(">q", value))
    elif isinstance(value, float):
        out.append(b"D" + struct.pack(">d", value))
    else:
        raise TypeError(f"cannot write {type(value).__name__} as UBJSON")
