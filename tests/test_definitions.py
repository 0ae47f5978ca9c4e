"""--definition takes a file path or a dotted module; every mistake in it is one line naming the place."""
from __future__ import annotations

import re

import pytest

from conftest import PROJECT_ROOT, REGION

from pipelines import cli

GOOD = '''
from pipelines.dsl import Pipeline

def definition(cfg):
    p = Pipeline("tiny", description="A pipeline of one step")
    p.processing("Only", "{script}", instance_type="ml.m5.large")
    return p
'''.format(script=PROJECT_ROOT / "tests/fixtures/scripts/fixture_step.py")


def compile_(capsys, definition) -> tuple[int, str, str]:
    code = cli.main(["compile", "--region", REGION, "--definition", str(definition)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_file_path_and_a_module_both_compile(tmp_path, capsys):
    path = tmp_path / "tiny_pipeline.py"
    path.write_text(GOOD)
    code, out, _ = compile_(capsys, path)
    assert code == 0 and '"Name": "Only"' in out
    assert "s3://ml-pipelines-dev/tiny/code/" in out and "purchase" not in out
    code, out, _ = compile_(capsys, "fixtures.retry_pipeline")
    assert code == 0 and '"Steps"' in out


@pytest.mark.parametrize("source, expected", [
    ("def definition(cfg)\n    return 1\n", r"^error: .*broken\.py:1: SyntaxError: expected ':'$"),
    ("x = 1\n", r"^error: .*broken\.py has no function definition\(cfg\): add `def definition\(cfg\) -> Pipeline:`"),
    ("def definition(cfg):\n    return {'steps': []}\n",
     r"^error: definition\(cfg\) in .*broken\.py:1 returned dict, not a pipelines\.dsl\.Pipeline: end it with `return p`$"),
    ("from pipelines.dsl import Pipeline\ndef definition(cfg):\n    return Pipeline('empty')\n",
     r"^error: pipeline 'empty' has no steps: add at least one"),
    ("def definition(cfg):\n    return cfg.no_such_setting\n",
     r"^error: definition\(cfg\) failed at .*broken\.py:2: AttributeError: .*no_such_setting"),
    ("import no_such_package_anywhere\n",
     r"^error: importing .*broken\.py failed at .*broken\.py:1: ModuleNotFoundError: No module named "
     r"'no_such_package_anywhere'$"),
])
def test_each_mistake_in_a_definition_file_is_one_line_naming_the_place(tmp_path, capsys, source, expected):
    path = tmp_path / "broken.py"
    path.write_text(source)
    code, out, err = compile_(capsys, path)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1, err
    assert re.match(expected, err.strip()), err


@pytest.mark.parametrize("ref, expected", [
    ("nowhere/my_pipeline.py", "--definition nowhere/my_pipeline.py: no such file"),
    ("no_such_module.pipeline", "--definition no_such_module.pipeline: no such module or file"),
])
def test_a_definition_that_is_not_there_says_what_to_give(capsys, ref, expected):
    code, _, err = compile_(capsys, ref)
    assert code == 2 and err.strip().startswith(f"error: {expected}") and len(err.strip().splitlines()) == 1


NEEDS_ITS_TABLE = '''
from dataclasses import dataclass

from pipelines.dsl import DefinitionError, Pipeline
from pipelines.settings import setting


@dataclass(frozen=True)
class Settings:
    label: str = setting("")


def definition(cfg):
    p = Pipeline({name})
    if not cfg.settings.label:
        raise DefinitionError("no label: set it under [pipeline.needs-label]")
    p.processing("Only", "{script}", arguments=["--label", cfg.settings.label], instance_type="ml.m5.large")
    return p
'''


def test_settings_of_the_pipelines_own_table_reach_it_and_its_name_may_not_depend_on_them(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[dev]\nbucket = "b"\n[pipeline.needs-label]\nlabel = "y"\nprefix = "teams/x"\n')
    path = tmp_path / "needs_label.py"
    script = PROJECT_ROOT / "tests/fixtures/scripts/fixture_step.py"
    path.write_text(NEEDS_ITS_TABLE.format(name='"needs-label"', script=script))
    code = cli.main(["compile", "--region", REGION, "--config", str(config), "--definition", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"--label",\n            "y"' in out and "s3://b/teams/x/code/" in out

    path.write_text(NEEDS_ITS_TABLE.format(name='"needs-label" if not cfg.settings.label else "renamed"', script=script))
    code = cli.main(["compile", "--region", REGION, "--config", str(config), "--definition", str(path)])
    assert code == 2
    assert "names its pipeline 'needs-label' without, and 'renamed' with, the settings of [pipeline.needs-label]" \
        in capsys.readouterr().err
