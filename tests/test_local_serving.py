"""From a registered model to predictions, offline: one small local run with --batch-transform,
then `approve --local`, `serve --local` (a subprocess on 127.0.0.1), `predict --local` and
`batch-transform --local`; served predictions must equal batch transform's for the same rows."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import multiprocessing
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import EXAMPLE_DEF, PROJECT_ROOT, example, example_config
from fixtures.servers import serving

from pipelines import cli
from examples.purchase_intent.shoppers_data import generate, write_csv
from pipelines.local import endpoint as local_endpoint
from pipelines.local.home import LocalHome
from pipelines.targets.local import LocalTarget

ROWS = 1500
LABEL = "Revenue"


def deploy(*args: str) -> tuple[int, str, str]:
    """deploy.py in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(args))
    return status, out.getvalue(), err.getvalue()


def request(url: str, body: bytes | None = None, content_type: str = "text/csv",
            accept: str = "text/csv") -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET (no body) or POST."""
    headers = {"Content-Type": content_type, "Accept": accept} if body is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One local run with batch transform on (ScoringData follows --input-data), its newest version approved."""
    tmp = tmp_path_factory.mktemp("serving")
    data = write_csv(generate(ROWS, seed=1), tmp / "sessions.csv")
    home = tmp / "home"
    status, out, err = deploy("run", "--definition", EXAMPLE_DEF, "--local", "--home", str(home), "--input-data", str(data), "--batch-transform",
                              "-p", "MaxTuningJobs=1", "-p", "MaxParallelTuningJobs=1", "-p", "QualityThreshold=0.5",
                              "--json")
    assert status == 0, err + out
    summary = json.loads(out)
    record = json.loads((home / "runs" / summary["execution_id"] / "execution.json").read_text())
    status, out, err = deploy("approve", "--definition", EXAMPLE_DEF, "latest", "--local", "--home", str(home))
    assert status == 0, err
    assert out.strip().endswith("model-package/purchase-intent-revenue-binary/1: Approved")
    with open(data, newline="") as f:
        rows = list(csv.reader(f))
    return {"home": home, "data": data, "tmp": tmp, "summary": summary, "record": record,
            "header": rows[0], "rows": rows[1:]}


@pytest.fixture(scope="module")
def scored(run) -> list[str]:
    """What the pipeline's BatchTransform step wrote for the input data: one line per data row."""
    step = next(s for s in run["record"]["steps"] if s["name"] == "BatchTransform")
    output = step["response"]["TransformOutput"]["S3OutputPath"]
    bucket, key = output[5:].split("/", 1)
    return (run["home"] / "s3" / bucket / key / "sessions.csv.out").read_text().splitlines()


@pytest.fixture(scope="module")
def server(run):
    """`deploy.py serve --local` on a free loopback port; stopped at the end of the module."""
    def command(port: int) -> list[str]:
        return [sys.executable, "deploy.py", "serve", "--local", "--definition", EXAMPLE_DEF, "--home", str(run["home"]),
                "--port", str(port)]

    with serving(command, "/ping", run["tmp"] / "serve.log", cwd=PROJECT_ROOT) as url:
        yield url


def probabilities(body: bytes) -> list[float]:
    values = [float(line) for line in body.decode().splitlines()]
    assert all(0.0 <= v <= 1.0 for v in values)
    return values


# --- the pipeline with batch transform on ------------------------------------------------------


def test_the_compiled_pipeline_scores_with_the_registered_model_after_the_gate(compile_with):
    plain = json.loads(compile_with().definition)
    doc = json.loads(compile_with(batch_transform=True).definition)
    params = {p["Name"]: p for p in doc["Parameters"]}
    assert "ScoringData" not in {p["Name"] for p in plain["Parameters"]}
    assert params["ScoringData"]["Type"] == "String"
    assert params["ScoringData"]["DefaultValue"] == params["InputData"]["DefaultValue"]
    (gate,) = [s for s in doc["Steps"] if s["Type"] == "Condition"]
    (plain_gate,) = [s for s in plain["Steps"] if s["Type"] == "Condition"]
    assert [s["Name"] for s in plain_gate["Arguments"]["IfSteps"]] == ["Register-RegisterModel"]
    assert [(s["Name"], s["Type"]) for s in gate["Arguments"]["IfSteps"]] == [
        ("Register-RegisterModel", "RegisterModel"), ("ScoringModel-CreateModel", "Model"),
        ("BatchTransform", "Transform")]
    register, model, transform = gate["Arguments"]["IfSteps"]
    registered = register["Arguments"]["InferenceSpecification"]["Containers"][0]
    container = model["Arguments"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == {
        "Get": "Steps.Register-RegisterModel.InferenceSpecification.Containers[0].ModelDataUrl"}
    assert (container["Image"], container["Environment"]) == (registered["Image"], registered["Environment"])
    args = transform["Arguments"]
    assert args["ModelName"] == {"Get": "Steps.ScoringModel-CreateModel.ModelName"}
    assert args["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": {"Get": "Parameters.ScoringData"}}},
        "ContentType": "text/csv", "SplitType": "None"}
    assert (args["TransformOutput"]["Accept"], args["TransformOutput"]["AssembleWith"]) == ("text/csv", "Line")
    assert args["TransformOutput"]["S3OutputPath"]["Std:Join"]["Values"][1] == {"Get": "Execution.PipelineExecutionId"}


@pytest.mark.parametrize("build, message", [
    (lambda p: p.model("M", "s3://bucket/model.tar.gz"), "model must be a training step's .model, a tuning step's "
                                                          ".best_model or a register step's .model_data"),
    (lambda p: p.transform("T", p.steps["Register"], data="s3://b/k", instance_type="ml.m5.large"),
     "model must be a model step (p.model(...))"),
    (lambda p: p.transform("T", p.steps["ScoringModel"], data="rows.csv", instance_type="ml.m5.large"),
     "data must be an s3:// URI, a String parameter holding one, or a processing step's output"),
    (lambda p: p.transform("T", p.steps["ScoringModel"], data="s3://b/k", instance_type="m5.large"),
     "instance type 'm5.large' is not a SageMaker instance type"),
    (lambda p: p.transform("T", p.steps["ScoringModel"], data="s3://b/k", instance_type="ml.m5.large",
                           split_type="RecordIO"), "split_type must be one of None, Line"),
])
def test_model_and_transform_steps_refuse_mistakes_when_built(build, message):
    from pipelines.dsl import DefinitionError

    pipeline = example().definition(example_config(batch_transform=True))
    with pytest.raises(DefinitionError, match=re.escape(message)):
        build(pipeline)


def test_a_local_run_creates_the_model_and_scores_every_row(run, scored):
    steps = {s["name"]: s for s in run["record"]["steps"]}
    assert run["summary"]["status"] == "Succeeded"
    assert steps["ScoringModel-CreateModel"]["status"] == steps["BatchTransform"]["status"] == "Succeeded"
    registered = steps["Register-RegisterModel"]["response"]["InferenceSpecification"]["Containers"][0]
    model = steps["ScoringModel-CreateModel"]["response"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == registered["ModelDataUrl"]
    assert steps["BatchTransform"]["response"]["ModelName"] == model["ModelName"]
    assert steps["BatchTransform"]["response"]["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == \
        run["record"]["parameters"]["InputData"] == run["record"]["parameters"]["ScoringData"]
    assert len(scored) == ROWS  # the header row scores nothing; the label column is ignored
    assert len(set(probabilities("\n".join(scored).encode()))) > 10


# --- the local endpoint ------------------------------------------------------------------------


def test_ping(server):
    status, content_type, body = request(f"{server}/ping")
    assert status == 200 and json.loads(body)["status"] == "Healthy"


def test_csv_with_a_header_and_the_label_scores_as_batch_transform_did(run, server, scored):
    body = csv_text([run["header"], *run["rows"][:100]]).encode()
    status, content_type, out = request(f"{server}/invocations", body)
    assert (status, content_type) == (200, "text/csv")
    probabilities(out)
    assert out.decode().splitlines() == scored[:100]


def test_csv_without_a_header_or_label_scores_the_same(run, server, scored):
    label = run["header"].index(LABEL)
    rows = [[v for i, v in enumerate(row) if i != label] for row in run["rows"][100:200]]
    status, _, out = request(f"{server}/invocations", csv_text(rows).encode())
    assert status == 200
    assert out.decode().splitlines() == scored[100:200]


def test_json_records_score_the_same_and_accept_is_honoured(run, server, scored):
    def typed(value: str):
        for cast in (int, float):
            with contextlib.suppress(ValueError):
                return cast(value)
        return value

    records = [{k: typed(v) for k, v in zip(run["header"], row)} for row in run["rows"][200:250]]
    status, content_type, out = request(f"{server}/invocations", json.dumps(records).encode(),
                                        content_type="application/json", accept="application/json")
    assert (status, content_type) == (200, "application/json")
    assert [f"{p:.10g}" for p in json.loads(out)["predictions"]] == scored[200:250]
    status, content_type, out = request(f"{server}/invocations", json.dumps({"instances": records[:3]}).encode(),
                                        content_type="application/json", accept="text/csv")
    assert (status, content_type) == (200, "text/csv")
    assert out.decode().splitlines() == scored[200:203]


def test_a_missing_column_is_a_400_naming_it(run, server):
    dropped = run["header"].index("PageValues")
    rows = [[v for i, v in enumerate(row) if i != dropped] for row in [run["header"], *run["rows"][:5]]]
    status, content_type, out = request(f"{server}/invocations", csv_text(rows).encode())
    assert (status, content_type) == (400, "application/json")
    assert "PageValues" in json.loads(out)["message"]


@pytest.mark.parametrize("body, content_type, accept, expected", [
    (b'Administrative,Month\n"1,Feb\n', "text/csv", "text/csv", 400),  # unterminated quote
    (b"\xff\xfe\x00garbage", "text/csv", "text/csv", 400),  # not UTF-8
    (b'[{"Administrative": 1,', "application/json", "application/json", 400),  # not JSON
    (b'{"rows": 3}', "application/json", "application/json", 400),  # JSON, but not records
    (b"", "text/csv", "text/csv", 400),
    (b"1,2", "text/plain", "text/csv", 415),
    (None, "text/csv", "application/xml", 406),
])
def test_malformed_payloads_get_a_4xx_and_the_server_keeps_serving(run, server, scored, body, content_type, accept,
                                                                    expected):
    good = csv_text([run["header"], *run["rows"][:2]]).encode()
    status, response_type, out = request(f"{server}/invocations", good if body is None else body,
                                         content_type=content_type, accept=accept)
    assert (status, response_type) == (expected, "application/json")
    assert json.loads(out)["message"]
    assert request(f"{server}/ping")[0] == 200
    assert request(f"{server}/invocations", good)[2].decode().splitlines() == scored[:2]


def test_an_oversized_payload_gets_413_and_the_server_keeps_serving(run, server, scored):
    row = csv_text(run["rows"][:1]).encode()
    body = csv_text([run["header"]]).encode() + row * (6 * 1024 * 1024 // len(row) + 10)
    assert len(body) > 6 * 1024 * 1024
    status, content_type, out = request(f"{server}/invocations", body)
    assert (status, content_type) == (413, "application/json")
    assert "6291456 bytes" in json.loads(out)["message"]
    assert request(f"{server}/ping")[0] == 200
    good = csv_text([run["header"], *run["rows"][:3]]).encode()
    assert request(f"{server}/invocations", good)[2].decode().splitlines() == scored[:3]


def test_predict_local_prints_one_probability_per_row(run, server, scored):
    rows = csv_text([run["header"], *run["rows"][300:340]])
    done = subprocess.run([sys.executable, "deploy.py", "predict", "--local", "--url", server], input=rows.encode(),
                          cwd=PROJECT_ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == scored[300:340]
    probabilities(done.stdout)


def test_predict_local_reports_the_servers_message(run, server, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Administrative\n1\n")))
    assert cli.main(["predict", "--local", "--url", server]) == 2
    err = capsys.readouterr().err
    assert "answered 400" in err and "Month" in err


def test_batch_transform_local_scores_a_file_without_the_label(run, scored):
    label = run["header"].index(LABEL)
    path = run["tmp"] / "to-score.csv"
    path.write_text(csv_text([[v for i, v in enumerate(row) if i != label]
                              for row in [run["header"], *run["rows"][:300]]]))
    status, out, err = deploy("batch-transform", "--definition", EXAMPLE_DEF, "--local", "--home", str(run["home"]), "--input", str(path))
    assert status == 0, err
    output_dir = Path(out.strip())
    assert output_dir.is_relative_to(run["home"] / "s3")
    assert (output_dir / "to-score.csv.out").read_text().splitlines() == scored[:300]


def test_deploy_endpoint_local_records_a_new_config_each_time(run):
    first = deploy("deploy-endpoint", "--definition", EXAMPLE_DEF, "--local", "--home", str(run["home"]), "--endpoint-name", "shop")
    second = deploy("deploy-endpoint", "--definition", EXAMPLE_DEF, "--local", "--home", str(run["home"]), "--endpoint-name", "shop")
    assert first[0] == second[0] == 0
    assert first[1].startswith("created endpoint shop: config shop-")
    assert second[1].startswith("updated endpoint shop: config shop-")
    record = json.loads((run["home"] / "endpoints" / "shop.json").read_text())
    configs = [c["EndpointConfigName"] for c in record["EndpointConfigs"]]
    assert len(set(configs)) == 2 and record["EndpointConfigName"] == configs[-1]
    assert record["ModelPackageArn"].endswith("model-package/purchase-intent-revenue-binary/1")


def _deploy_busy(home: Path, package: dict, times: int) -> None:
    for _ in range(times):
        local_endpoint.deploy(LocalHome(home), package, endpoint_name="busy", instance_type="ml.m5.large")


def test_concurrent_deploys_to_one_local_endpoint_all_land(run):
    home = LocalHome(run["home"])
    package = LocalTarget(home).package("purchase-intent-revenue-binary", "latest", approved=True)
    workers, times = 4, 5
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.starmap(_deploy_busy, [(run["home"], package, times)] * workers)
    record = local_endpoint.endpoint_record(home, "busy")
    configs = [c["EndpointConfigName"] for c in record["EndpointConfigs"]]
    assert len(configs) == len(set(configs)) == workers * times
    assert record["EndpointConfigName"] == configs[-1]
