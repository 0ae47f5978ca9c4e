"""Fixture processing script that knows only SageMaker's fixed /opt/ml paths."""
import json
import pathlib

config = json.loads(pathlib.Path("/opt/ml/config/processingjobconfig.json").read_text())
data = pathlib.Path("/opt/ml/processing/input/data/numbers.txt").read_text().split()
out = pathlib.Path("/opt/ml/processing/output/result")
(out / "sum.json").write_text(json.dumps({"job": config["ProcessingJobName"], "sum": sum(map(int, data))}))
pathlib.Path("/opt/ml/output/message").write_text("summed")
