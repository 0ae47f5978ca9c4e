"""Fixture inference program: a linear model over CSV rows, in plain Python."""
import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)


def input_fn(body, content_type):
    assert content_type == "text/csv", content_type
    return [[float(x) for x in line.split(",")] for line in body.splitlines() if line]


def predict_fn(rows, model):
    print(f"batch of {len(rows)} rows", flush=True)
    return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]


def output_fn(scores, accept):
    return "\n".join(f"{s:g}" for s in scores), accept
