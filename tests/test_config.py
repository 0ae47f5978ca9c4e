"""Settings per environment and per pipeline: dev and prod differ, a pipeline's table wins over the
environment's, flags win over both, mistakes name the key and the file."""
from __future__ import annotations

import os

import pytest

from pipelines.config import CONFIG_FILE, Config, ConfigError, aws_region, duration_seconds, load_config


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_dev_and_prod_differ_where_the_file_says():
    dev, prod = load_config("dev", pipeline="purchase-intent"), load_config("prod", pipeline="purchase-intent")
    assert (dev.env, prod.env) == ("dev", "prod")
    assert (dev.bucket, prod.bucket) == ("ml-pipelines-dev", "ml-pipelines-prod")
    assert (dev.max_tuning_jobs, prod.max_tuning_jobs) == (4, 20)
    assert prod.training_instance_type == "ml.m5.2xlarge" != dev.training_instance_type
    assert dev.tags == {"project": "purchase-intent", "environment": "dev"}
    assert prod.tags == {"project": "purchase-intent", "environment": "prod"}
    assert dev.pipeline_name == prod.pipeline_name == "purchase-intent"
    assert dev.s3_root == "s3://ml-pipelines-dev/purchase-intent"  # the prefix is the pipeline's name


def test_another_pipeline_gets_nothing_of_purchase_intent():
    cfg = load_config("dev", pipeline="diabetes")
    assert (cfg.label, cfg.feature_set, cfg.tags) == ("", "none", {"environment": "dev"})
    assert cfg.s3_root == "s3://ml-pipelines-dev/diabetes"
    assert "purchase" not in repr(cfg)


def test_a_pipeline_table_wins_over_the_environment_and_flags_win_over_both(tmp_path):
    path = write(tmp_path, '[default]\nmax_tuning_jobs = 1\nlabel = "y"\n[prod]\nbucket = "b"\nmax_tuning_jobs = 20\n'
                           '[pipeline.p]\nmax_tuning_jobs = 6\nprefix = "teams/p"\nmodel_package_group = "p-models"\n'
                           '[pipeline.p.tags]\nowner = "me"\n[pipeline.q]\nlabel = "z"\n')
    p = load_config("prod", path=path, pipeline="p")
    assert (p.max_tuning_jobs, p.label, p.tags, p.model_package_group) == (6, "y", {"owner": "me"}, "p-models")
    assert p.s3_root == "s3://b/teams/p"
    assert load_config("prod", path=path, pipeline="q").max_tuning_jobs == 20  # another pipeline's table
    assert load_config("prod", path=path, pipeline="p", max_tuning_jobs=2).max_tuning_jobs == 2


def test_a_bad_setting_in_a_pipeline_table_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, '[dev]\n[pipeline.p]\nlabell = "y"\n')
    with pytest.raises(ConfigError, match=rf"unknown setting 'labell' in {path}"):
        load_config("dev", path=path, pipeline="p")


def test_flags_override_the_file_and_none_means_not_given():
    cfg = load_config("prod", pipeline="purchase-intent", region="eu-west-1", bucket="mine",
                      role_arn="arn:aws:iam::123456789012:role/R", problem_type="regression", tuning=False, label=None)
    assert (cfg.region, cfg.bucket, cfg.role_arn) == ("eu-west-1", "mine", "arn:aws:iam::123456789012:role/R")
    assert (cfg.problem_type, cfg.tuning, cfg.label) == ("regression", False, "Revenue")
    assert cfg.max_tuning_jobs == 20  # untouched settings keep the file's value


def test_an_environment_table_overrides_nested_tags_key_by_key(tmp_path):
    path = write(tmp_path, '[default.tags]\na = "1"\nb = "2"\n[qa.tags]\nb = "3"\n')
    assert load_config("qa", path=path).tags == {"a": "1", "b": "3"}


def test_an_unknown_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, '[default]\nbucket = "b"\n[dev]\nbuckett = "typo"\n')
    with pytest.raises(ConfigError) as e:
        load_config("dev", path=path)
    assert f"unknown setting 'buckett' in {path}" in str(e.value)
    assert "bucket" in str(e.value).split("known settings are", 1)[1]


@pytest.mark.parametrize("line, key, expected", [
    ('max_tuning_jobs = "8"', "max_tuning_jobs", "int"),
    ("tuning = 1", "tuning", "bool"),
    ("max_tuning_jobs = true", "max_tuning_jobs", "int"),
    ("quality_threshold = true", "quality_threshold", "float or int or str"),
    ("bucket = 3", "bucket", "str"),
    ('tags = "x"', "tags", "dict"),
])
def test_a_value_of_the_wrong_type_names_the_key_the_file_and_the_type(tmp_path, line, key, expected):
    path = write(tmp_path, f"[dev]\n{line}\n")
    with pytest.raises(ConfigError, match=rf"setting '{key}' in {path} must be {expected}, got"):
        load_config("dev", path=path)


def test_an_int_is_accepted_where_a_float_is_expected(tmp_path):
    assert load_config("dev", path=write(tmp_path, "[dev]\nquality_threshold = 1\n")).quality_threshold == 1


def test_an_unknown_environment_lists_the_known_ones():
    with pytest.raises(ConfigError, match=rf"environment 'staging' is not in {CONFIG_FILE}: choose one of dev, prod"):
        load_config("staging")


def test_the_problem_type_is_validated_from_the_file_and_from_flags(tmp_path):
    path = write(tmp_path, '[dev]\nproblem_type = "ranking"\n')
    with pytest.raises(ConfigError, match=r"problem_type 'ranking' is not supported: use one of binary, multiclass, regression"):
        load_config("dev", path=path)
    with pytest.raises(ConfigError, match="problem_type 'ranking' is not supported"):
        load_config("dev", problem_type="ranking")


def test_a_missing_bucket_says_how_to_set_it():
    with pytest.raises(ConfigError, match=r"no S3 bucket for environment 'qa': pass --bucket NAME or set `bucket` under \[qa\]"):
        Config(env="qa").s3_root


def test_project_tags_join_the_pipeline_tags():
    cfg = load_config("dev", pipeline="purchase-intent", sagemaker_project_name="p", sagemaker_project_id="p-123")
    assert cfg.all_tags() == {"project": "purchase-intent", "environment": "dev",
                              "sagemaker:project-name": "p", "sagemaker:project-id": "p-123"}
    assert load_config("dev").all_tags() == load_config("dev").tags


def test_tag_values_must_be_strings(tmp_path):
    path = write(tmp_path, "[dev.tags]\ncost-center = 42\n")
    with pytest.raises(ConfigError, match=rf"setting 'tags' in {path} must be a table of strings"):
        load_config("dev", path=path)


def test_a_declared_schema_table_becomes_the_schema_parameters_default(tmp_path):
    cfg = load_config("dev", path=write(tmp_path, '[dev]\n[dev.schema]\nStore = "code"\nNote = "dropped"\n'))
    assert cfg.schema == {"Store": "code", "Note": "dropped"}
    assert cfg.declared_schema == '{"Note":"dropped","Store":"code"}'  # compact and sorted: the same bytes each time
    assert load_config("dev").declared_schema == ""  # none declared: everything inferred
    with pytest.raises(ConfigError, match=r"setting 'schema' in .* must be a table of strings \(column kinds\)"):
        load_config("dev", path=write(tmp_path, "[dev.schema]\nStore = 3\n"))


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
    assert Config(time_budget=text).time_budget_seconds == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1m", "0s"])
def test_a_time_budget_that_is_no_duration_is_refused_by_name(text):
    with pytest.raises(ConfigError, match="time budget .* (is not a duration|is shorter than a second)"):
        Config(time_budget=text)
