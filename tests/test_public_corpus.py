"""Pipelines other people wrote, run unchanged: each repository of tests/fixtures/public is compiled
offline from its own get_pipeline() and run through `deploy.py run --local --definition-json` in its
images' environments. Each one either passes its own gate and registers one version, or is refused
before anything runs, with the reason (docs/public-corpus.md lists the corpus and each result)."""
from __future__ import annotations

import re

import pytest

from conftest import SDK_V2_SAMPLES, run_cli, steps_of
from fixtures.public_corpus import CASES, PUBLIC, Fails, Refused, blob_hash, compile_case, input_flags
from pipelines.local import LocalHome, open_store
from pipelines.local.registry import Registry


def _vendored(repo):
    return sorted(p for p in (PUBLIC / repo).rglob("*") if p.is_file() and p.name not in ("SOURCE.md", "LICENSE.txt"))


@pytest.mark.parametrize("repo", sorted(p.name for p in PUBLIC.iterdir() if p.is_dir()))
def test_vendored_files_are_the_repositorys_bytes_as_source_md_records_them(repo):
    source = (PUBLIC / repo / "SOURCE.md").read_text()
    recorded = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{40})` \|$", source, re.M))
    assert re.search(r"^- Commit: `[0-9a-f]{40}`", source, re.M) and "- Licence: " in source
    assert (PUBLIC / repo / "LICENSE.txt").read_text().strip()
    files = {str(p.relative_to(PUBLIC / repo)): blob_hash(p) for p in _vendored(repo)}
    assert files == recorded


def test_every_vendored_repository_is_in_the_corpus():
    assert sorted(case.repo for case in CASES) == sorted(p.name for p in PUBLIC.iterdir() if p.is_dir())


@pytest.mark.corpus
@SDK_V2_SAMPLES
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_public_pipeline_runs_unchanged_in_its_image_environments(tmp_path, case, capsys):
    from pipelines import cli

    home = tmp_path / "home"
    package = None
    if case.first:  # what their CI runs before, in the same account: its Approved version is this one's model
        _passes(case.first, tmp_path / "first", home)
        package = Registry.of(LocalHome(home)).latest(case.first.kwargs["model_package_group_name"], "Approved")
        assert package is not None, "the first pipeline registered no Approved version"
    definition, uploads = compile_case(case, tmp_path, package)
    args = ["run", "--local", "--home", home, "--definition-json", definition, *uploads,
            *input_flags(case, tmp_path), "--job-env", "image"]
    if isinstance(case.expect, Refused):
        assert cli.main([*map(str, args)]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith("error: the local runner cannot run this definition: ")
        for reason in case.expect.reasons:
            assert reason in error
        assert not (home / "runs").exists()  # refused before the execution was even recorded
        return
    _passes(case, tmp_path, home, (definition, uploads))


def _passes(case, work, home, compiled=None):
    """Run `case` (compiled already, or now) in `home` and check it passes (or fails) as `case.expect` says."""
    work.mkdir(exist_ok=True)
    definition, uploads = compiled or compile_case(case, work)
    code, summary = run_cli("run", "--local", "--home", home, "--definition-json", definition, *uploads,
                            *input_flags(case, work), "--job-env", "image")
    status = {s["name"]: s["status"] for s in summary["steps"]}
    expect = case.expect
    if isinstance(expect, Fails):
        assert code != 0 and [n for n, s in status.items() if s == "Failed"] == [expect.step], status
        assert set(status.values()) <= {"Succeeded", "Failed", "NotRun"}, status
        for reason in expect.reasons:
            assert reason in summary["failure_reason"], summary["failure_reason"]
        _ran_in_image_environments(summary, home)
        return
    assert code == 0, f"{summary['failure_reason']} (log: {summary['failure_log']})"
    assert set(status.values()) == {"Succeeded"}, status
    if expect.gate:
        assert summary["gate"]["passed"] is True, summary["gate"]
    if expect.register:
        assert status[expect.register] == "Succeeded"
        assert summary["registered_model"]["ModelPackageVersion"] == 1
    if expect.transform:
        record = steps_of(LocalHome(home).execution(summary["execution_id"]))
        _one_prediction_per_input_line(record[expect.transform], home)
    _ran_in_image_environments(summary, home)


def _ran_in_image_environments(summary, home):
    """Every job ran in its image's environment, not on the host's packages (its log's first lines say which)."""
    record = steps_of(LocalHome(home).execution(summary["execution_id"]))
    for name, step in record.items():
        if step["type"] in ("Processing", "Training", "Transform") and step["status"] != "NotRun":
            log = (home / "runs" / summary["execution_id"] / "logs" / f"{name}.log").read_text()
            where = re.search(r"job environment: (\S+)", log)
            notes = [line for line in log.splitlines()[:40] if line.startswith("[local runner] note:")]
            assert where and where.group(1) != "host", f"{name} ran on the host's packages: {notes}"


def _one_prediction_per_input_line(step, home):
    request = step["arguments"]
    store = open_store(None, root=LocalHome(home).s3)
    source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    output = request["TransformOutput"]["S3OutputPath"].rstrip("/")
    inputs = store.list(source)
    assert inputs, f"no input under {source}"
    for uri in inputs:
        lines = store.get_bytes(uri).decode().splitlines()
        predictions = [float(p) for p in
                       store.get_bytes(f"{output}/{uri[len(source.rstrip('/')) + 1:]}.out").decode().splitlines()]
        assert len(predictions) == len(lines), (uri, len(lines), len(predictions))
