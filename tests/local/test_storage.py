"""The S3-addressed stores: LocalStore on files, Boto3Store on moto, one behaviour."""

import boto3
import pytest
from moto import mock_aws

from pipelines.local.storage import Boto3Store, LocalStore, open_store, relative_key

OBJECTS = {
    "data/train/a.csv": b"a",
    "data/train/sub/b.csv": b"b",
    "data/trx.csv": b"x",
    "data/other/c.csv": b"c",
}


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture(params=["local", "moto"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalStore(tmp_path / "s3")
        return
    request.getfixturevalue("aws_env")
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="bkt")
    yield Boto3Store(client)


@pytest.fixture
def filled(store):
    for key, data in OBJECTS.items():
        store.put_bytes(f"s3://bkt/{key}", data)
    return store


def test_round_trip(store, tmp_path):
    store.put_bytes("s3://bkt/x/y.bin", b"\x00\x01")
    source = tmp_path / "file.txt"
    source.write_text("hello")
    store.put_file("s3://bkt/x/z.txt", source)
    assert store.get_bytes("s3://bkt/x/y.bin") == b"\x00\x01"
    assert store.get_bytes("s3://bkt/x/z.txt") == b"hello"
    assert store.exists("s3://bkt/x/y.bin") and not store.exists("s3://bkt/x/nope")


def test_missing_object_names_the_uri(store):
    with pytest.raises(FileNotFoundError, match="s3://bkt/missing/key"):
        store.get_bytes("s3://bkt/missing/key")


def test_list_is_a_sorted_string_prefix_match(filled):
    assert filled.list("s3://bkt/data/tr") == [
        "s3://bkt/data/train/a.csv", "s3://bkt/data/train/sub/b.csv", "s3://bkt/data/trx.csv"]
    assert filled.list("s3://bkt/data/train/") == ["s3://bkt/data/train/a.csv", "s3://bkt/data/train/sub/b.csv"]
    assert len(filled.list("s3://bkt/")) == len(OBJECTS)
    assert filled.list("s3://bkt/nothing") == []


def test_download_keeps_paths_relative_to_the_prefix(filled, tmp_path):
    written = filled.download("s3://bkt/data/train", tmp_path / "d")
    assert sorted(p.relative_to(tmp_path / "d").as_posix() for p in written) == ["a.csv", "sub/b.csv"]
    assert (tmp_path / "d/sub/b.csv").read_bytes() == b"b"


def test_download_of_an_exact_key_lands_under_its_basename(filled, tmp_path):
    [path] = filled.download("s3://bkt/data/trx.csv", tmp_path / "d")
    assert path == tmp_path / "d/trx.csv"


def test_download_only_the_given_keys(filled, tmp_path):
    shard = filled.list("s3://bkt/data/train")[1:]
    written = filled.download("s3://bkt/data/train", tmp_path / "d", keys=shard)
    assert [p.relative_to(tmp_path / "d").as_posix() for p in written] == ["sub/b.csv"]


def test_download_of_an_empty_prefix_fails(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="No S3 objects found under S3 URL s3://bkt/none"):
        store.download("s3://bkt/none", tmp_path)


def test_upload_dir(store, tmp_path):
    (tmp_path / "out/deep").mkdir(parents=True)
    (tmp_path / "out/a.txt").write_text("a")
    (tmp_path / "out/deep/b.txt").write_text("b")
    assert store.upload_dir(tmp_path / "out", "s3://bkt/up/") == ["s3://bkt/up/a.txt", "s3://bkt/up/deep/b.txt"]
    assert store.get_bytes("s3://bkt/up/deep/b.txt") == b"b"


def test_relative_key():
    assert relative_key("data/train", "data/train/a.csv") == "a.csv"
    assert relative_key("data/train/", "data/train/a.csv") == "a.csv"
    assert relative_key("data/tr", "data/train/a.csv") == "train/a.csv"
    assert relative_key("data/x.csv", "data/x.csv") == "x.csv"
    assert relative_key("", "a/b") == "a/b"


@pytest.mark.parametrize("uri", ["s3://bkt/../escape", "s3://bkt/a/../../escape", "s3://../x", "s3://bkt//etc/passwd",
                                 "s3://bkt/./a"])
def test_local_store_refuses_path_escape(tmp_path, uri):
    store = LocalStore(tmp_path / "s3")
    with pytest.raises(ValueError, match="escape"):
        store.put_bytes(uri, b"x")
    assert not (tmp_path / "escape").exists()


def test_local_store_leaves_no_partial_files(tmp_path):
    store = LocalStore(tmp_path / "s3")
    store.put_bytes("s3://bkt/a/b.txt", b"1")
    store.put_bytes("s3://bkt/a/b.txt", b"2")
    assert [p.name for p in (tmp_path / "s3/bkt/a").iterdir()] == ["b.txt"]
    assert store.get_bytes("s3://bkt/a/b.txt") == b"2"


def test_local_store_failed_write_leaves_nothing(tmp_path):
    store = LocalStore(tmp_path / "s3")
    with pytest.raises(FileNotFoundError):
        store.put_file("s3://bkt/a/b.txt", tmp_path / "does-not-exist")
    assert not store.exists("s3://bkt/a/b.txt")
    assert store.list("s3://bkt/") == []


def test_open_store(tmp_path, aws_env):
    assert isinstance(open_store(None, root=tmp_path), LocalStore)
    assert isinstance(open_store("local", root=tmp_path), LocalStore)
    assert isinstance(open_store("s3", root=tmp_path), Boto3Store)
    with pytest.raises(ValueError, match="unknown store"):
        open_store("gcs", root=tmp_path)


def test_a_stage_flag_keeps_the_equals_signs_of_its_s3_key(tmp_path):
    """Hive-style partitions and Redshift UNLOAD prefixes put "=" in keys: the pair splits where a local path follows."""
    from pipelines.local.staging import StagingError, parse

    data = tmp_path / "part=1.csv"
    data.write_text("1\n")
    assert parse(f"s3://b/year=2024/000={data}") == ("s3://b/year=2024/000", data)
    assert parse(f"s3://b/k={data}") == ("s3://b/k", data)
    with pytest.raises(StagingError, match="does not exist"):
        parse("s3://b/year=2024/000=missing.csv")
    with pytest.raises(StagingError, match="write it as s3://bucket/key=LOCAL_PATH"):
        parse("s3://b/k=")
