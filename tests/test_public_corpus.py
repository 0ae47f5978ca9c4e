"""Pipelines other people wrote, run unchanged: each repository of tests/fixtures/public is compiled
offline from its own get_pipeline() and run through `deploy.py run --local --definition-json` in its
images' environments. Each one either passes its own gate and registers one version, or is refused
before anything runs, with the reason (docs/public-corpus.md lists the corpus and each result)."""
from __future__ import annotations

import re

import pytest

from conftest import SDK_V2_SAMPLES, run_cli, steps_of
from fixtures.public_corpus import CASES, PUBLIC, Passes, Refused, blob_hash, compile_case, stage_flags
from pipelines.local import LocalHome


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

    definition, uploads = compile_case(case, tmp_path)
    home = tmp_path / "home"
    args = ["run", "--local", "--home", home, "--definition-json", definition, *uploads,
            *stage_flags(case, tmp_path), "--job-env", "image"]
    if case.gap:  # stopped by a known runner gap: check it is that one, not another failure
        assert cli.main([*map(str, args)]) != 0, f"{case.id} no longer meets its gap: expect {case.expect}"
        output = capsys.readouterr()
        assert case.gap.says in output.out + output.err
        pytest.xfail(case.gap.why)
    if isinstance(case.expect, Refused):
        assert cli.main([*map(str, args)]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith("error: the local runner cannot run this definition: ")
        for reason in case.expect.reasons:
            assert reason in error
        assert not (home / "runs").exists()  # refused before the execution was even recorded
        return
    assert isinstance(case.expect, Passes)
    code, summary = run_cli(*args)
    assert code == 0, f"{summary['failure_reason']} (log: {summary['failure_log']})"
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert set(status.values()) == {"Succeeded"}, status
    assert summary["gate"]["passed"] is True, summary["gate"]
    assert status[case.expect.gate] == "Succeeded" and status[case.expect.register] == "Succeeded"
    assert summary["registered_model"]["ModelPackageVersion"] == 1
    record = steps_of(LocalHome(home).execution(summary["execution_id"]))
    # Every job ran in its image's environment, not on the host's packages (its log's first lines say which).
    for name, step in record.items():
        if step["type"] in ("Processing", "Training"):
            log = (home / "runs" / summary["execution_id"] / "logs" / f"{name}.log").read_text()
            where = re.search(r"job environment: (\S+)", log)
            notes = [line for line in log.splitlines()[:40] if line.startswith("[local runner] note:")]
            assert where and where.group(1) != "host", f"{name} ran on the host's packages: {notes}"
