"""Settings per environment and per pipeline: dev and prod differ, the project's file wins over the
product's defaults, a pipeline's table wins over the environment's, flags win over all, a definition's
own settings are typed and set in its table or by flags, and mistakes name the key and the file."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from conftest import example_config

from pipelines.config import DEFAULTS_FILE, Config, ConfigError, aws_region, load_config, project_file
from pipelines.settings import duration_seconds, setting
from pipelines.tabular import Settings as TabularSettings


def write(tmp_path, text: str):
    path = tmp_path / "ml-pipelines.toml"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Own:
    """A definition's own settings, as a definition declares them."""

    label: str = setting("", "the column to predict", flag=True)
    rounds: int = setting(10, "boosting rounds")
    tuning: bool = setting(True)
    schema: dict = setting({})
    kind: str = setting("a", choices=("a", "b"))


def test_dev_and_prod_differ_where_the_defaults_say():
    dev, prod = load_config("dev", pipeline="p"), load_config("prod", pipeline="p")
    assert (dev.env, prod.env) == ("dev", "prod")
    assert (dev.bucket, prod.bucket) == ("ml-pipelines-dev", "ml-pipelines-prod")
    assert (dev.max_tuning_jobs, prod.max_tuning_jobs) == (4, 20)
    assert prod.training_instance_type == "ml.m5.2xlarge" != dev.training_instance_type
    assert (dev.tags, prod.tags) == ({"environment": "dev"}, {"environment": "prod"})
    assert dev.pipeline_name == prod.pipeline_name == "p"
    assert dev.s3_root == "s3://ml-pipelines-dev/p"  # the prefix is the pipeline's name


def test_the_products_defaults_name_no_pipeline_and_carry_none_of_its_settings():
    assert "[pipeline." not in "\n".join(line for line in DEFAULTS_FILE.read_text().splitlines()
                                          if not line.startswith("#"))
    cfg = load_config("dev", pipeline="diabetes")
    assert cfg.settings is None and cfg.s3_root == "s3://ml-pipelines-dev/diabetes"
    assert "purchase" not in repr(cfg) and "Revenue" not in repr(cfg)


def test_the_project_file_wins_over_the_defaults_and_adds_environments(tmp_path):
    path = write(tmp_path, '[default]\nmax_tuning_jobs = 1\n[qa]\nbucket = "qa-bucket"\n')
    assert load_config("dev", path).max_tuning_jobs == 1  # the project's [default] over the product's [dev]
    assert load_config("qa", path).bucket == "qa-bucket"
    assert load_config("qa", path).inference_instance_type == "ml.m5.large"  # the rest from the defaults


def test_the_project_file_is_ml_pipelines_toml_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert project_file() is None
    write(tmp_path, "[dev]\n")
    assert project_file() == tmp_path / "ml-pipelines.toml"
    assert project_file("other.toml").name == "other.toml"


def test_a_pipeline_table_wins_over_the_environment_and_flags_win_over_both(tmp_path):
    path = write(tmp_path, '[default]\nmax_tuning_jobs = 1\n[prod]\nbucket = "b"\nmax_tuning_jobs = 20\n'
                           '[pipeline.p]\nmax_tuning_jobs = 6\nprefix = "teams/p"\nmodel_package_group = "p-models"\n'
                           'label = "y"\n[pipeline.p.tags]\nowner = "me"\n[pipeline.q]\nlabel = "z"\n')
    p = load_config("prod", path, pipeline="p", declared=Own)
    assert (p.max_tuning_jobs, p.settings.label, p.model_package_group) == (6, "y", "p-models")
    assert p.tags == {"environment": "prod", "owner": "me"}
    assert p.s3_root == "s3://b/teams/p"
    assert load_config("prod", path, pipeline="q", declared=Own).max_tuning_jobs == 20  # another pipeline's table
    flagged = load_config("prod", path, pipeline="p", declared=Own, max_tuning_jobs=2, label="w", rounds="30")
    assert (flagged.max_tuning_jobs, flagged.settings.label, flagged.settings.rounds) == (2, "w", 30)


def test_a_definitions_own_settings_are_typed_from_text_and_from_toml(tmp_path):
    path = write(tmp_path, '[pipeline.p]\nrounds = 12\ntuning = false\n[pipeline.p.schema]\nStore = "code"\n')
    cfg = load_config("dev", path, pipeline="p", declared=Own)
    assert (cfg.settings.rounds, cfg.settings.tuning, cfg.settings.schema) == (12, False, {"Store": "code"})
    schema = tmp_path / "schema.json"
    schema.write_text('{"Note": "dropped"}')
    given = load_config("dev", path, pipeline="p", declared=Own, tuning="yes", schema=str(schema), kind="b")
    assert (given.settings.tuning, given.settings.schema, given.settings.kind) == (True, {"Note": "dropped"}, "b")
    assert load_config("dev", pipeline="p", declared=Own).settings == Own()  # none given: the defaults


@pytest.mark.parametrize("where, overrides, message", [
    ("[pipeline.p]\nrounds = \"many\"\n", {}, "setting 'rounds' in [pipeline.p] of {path} must be int, got 'many'"),
    ("", {"rounds": "many"}, "--rounds 'many' is not int"),
    ("", {"kind": "c"}, "--kind 'c': choose one of a, b"),
    ("", {"labl": "y"}, "unknown setting 'labl' (--labl): did you mean label?"),
    ("[pipeline.p]\nlabell = \"y\"\n", {}, "unknown setting 'labell' ([pipeline.p] of {path}): did you mean label?"),
])
def test_a_bad_own_setting_names_it_where_it_came_from_and_the_fix(tmp_path, where, overrides, message):
    path = write(tmp_path, where)
    with pytest.raises(ConfigError) as refused:
        load_config("dev", path, pipeline="p", declared=Own, **overrides)
    assert message.format(path=path) in str(refused.value)


def test_a_setting_of_no_declared_name_in_a_pipeline_table_is_refused(tmp_path):
    path = write(tmp_path, '[dev]\n[pipeline.p]\nlabel = "y"\n')
    with pytest.raises(ConfigError, match=rf"unknown setting 'label' \(\[pipeline.p\] of {path}\)"):
        load_config("dev", path, pipeline="p")  # a definition that declares no label


def test_a_definition_may_not_declare_a_framework_setting():
    @dataclass(frozen=True)
    class Clash:
        bucket: str = setting("")

    with pytest.raises(ConfigError, match="declare bucket, a framework setting"):
        load_config("dev", pipeline="p", declared=Clash)


def test_flags_override_the_files_and_none_means_not_given():
    cfg = example_config("prod", region="eu-west-1", bucket="mine", role_arn="arn:aws:iam::123456789012:role/R",
                         problem_type="regression", tuning=False, label=None)
    assert (cfg.region, cfg.bucket, cfg.role_arn) == ("eu-west-1", "mine", "arn:aws:iam::123456789012:role/R")
    assert (cfg.settings.problem_type, cfg.settings.tuning, cfg.settings.label) == ("regression", False, "Revenue")
    assert cfg.max_tuning_jobs == 20  # untouched settings keep the file's value


def test_an_environment_table_overrides_nested_tags_key_by_key(tmp_path):
    path = write(tmp_path, '[default.tags]\na = "1"\nb = "2"\n[qa.tags]\nb = "3"\n')
    assert load_config("qa", path).tags == {"a": "1", "b": "3"}


def test_an_unknown_key_names_the_key_the_table_and_the_file(tmp_path):
    path = write(tmp_path, '[default]\nbucket = "b"\n[dev]\nbuckett = "typo"\n')
    with pytest.raises(ConfigError) as e:
        load_config("dev", path)
    assert f"unknown setting 'buckett' ([dev] of {path}): did you mean bucket?" in str(e.value)


@pytest.mark.parametrize("line, key, expected", [
    ('max_tuning_jobs = "8"', "max_tuning_jobs", "int"),
    ("max_tuning_jobs = true", "max_tuning_jobs", "int"),
    ("quality_threshold = true", "quality_threshold", "float or str"),
    ("bucket = 3", "bucket", "str"),
    ('tags = "x"', "tags", "dict"),
])
def test_a_value_of_the_wrong_type_names_the_key_the_file_and_the_type(tmp_path, line, key, expected):
    path = write(tmp_path, f"[dev]\n{line}\n")
    with pytest.raises(ConfigError, match=rf"setting '{key}' in \[dev\] of {path} must be {expected}, got"):
        load_config("dev", path)


def test_an_int_is_accepted_where_a_float_is_expected(tmp_path):
    assert load_config("dev", write(tmp_path, "[dev]\nquality_threshold = 1\n")).quality_threshold == 1


def test_an_unknown_environment_lists_the_known_ones():
    with pytest.raises(ConfigError, match=rf"environment 'staging' is not in {DEFAULTS_FILE}: choose one of dev, prod"):
        load_config("staging")


def test_a_missing_or_malformed_project_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="--config .*nowhere.toml: no such file"):
        load_config("dev", tmp_path / "nowhere.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config("dev", write(tmp_path, "[dev\n"))


def test_a_missing_bucket_says_how_to_set_it():
    with pytest.raises(ConfigError, match=r"no S3 bucket for environment 'qa': pass --bucket NAME or set `bucket` under \[qa\]"):
        Config(env="qa").s3_root


def test_project_tags_join_the_pipeline_tags():
    cfg = load_config("dev", pipeline="p", sagemaker_project_name="p", sagemaker_project_id="p-123")
    assert cfg.all_tags() == {"environment": "dev", "sagemaker:project-name": "p", "sagemaker:project-id": "p-123"}
    assert load_config("dev").all_tags() == load_config("dev").tags


def test_tag_values_must_be_strings(tmp_path):
    path = write(tmp_path, "[dev.tags]\ncost-center = 42\n")
    with pytest.raises(ConfigError, match=rf"setting 'tags' in \[dev\] of {path} must be a table of str values"):
        load_config("dev", path)


AWS_CONFIG = """[default]
region = eu-west-1

[profile work]
region = ap-southeast-2

[profile bare]
output = json
"""


@pytest.mark.parametrize("environ", [
    {}, {"AWS_DEFAULT_REGION": "us-west-2"}, {"AWS_PROFILE": "work"}, {"AWS_DEFAULT_PROFILE": "work"},
    {"AWS_PROFILE": "bare"}, {"AWS_PROFILE": "work", "AWS_DEFAULT_REGION": "sa-east-1"}, {"AWS_REGION": "eu-north-1"},
    {"no config file": ""},
])
def test_the_default_region_is_the_one_boto3_chooses(monkeypatch, tmp_path, environ):
    """Read without importing boto3, so a command that needs no AWS client never pays its import."""
    import boto3

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "config"
    config.write_text(AWS_CONFIG)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing" if "no config file" in environ else config))
    for key, value in environ.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    assert aws_region() == boto3.Session().region_name


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5m", 90),
                                           ("2h", 7200)])
def test_a_time_budget_is_a_duration_as_people_write_it(text, seconds):
    assert duration_seconds(text) == seconds
    assert duration_seconds(TabularSettings(time_budget=text).time_budget) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1m", "0s"])
def test_a_time_budget_that_is_no_duration_is_refused_by_name(text):
    with pytest.raises(ConfigError, match="time budget .* (is not a duration|is shorter than a second)"):
        TabularSettings(time_budget=text)
