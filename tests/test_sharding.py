"""Preprocess across the hosts of a processing job: each host reads its share of the input objects, and
the rows, their splits, the schema and the profile are the same whatever the number of hosts."""
import json
import shutil
import socket
import threading

import numpy as np
import pandas as pd
import pytest

from examples.purchase_intent import shoppers_data as data
from test_preprocess import read_splits

import preprocess

FILES = 6


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_inputs(tmp_path, frames):
    """The input objects, sorted by key, then every host's share as ShardedByS3Key gives it."""
    source = tmp_path / "objects"
    for i, frame in enumerate(frames):
        data.write_csv(frame, source / f"part-{i:02d}.csv")
    return sorted(source.iterdir())


def run_hosts(tmp_path, objects, hosts, *extra):
    """Run preprocess on `hosts` hosts (threads, reaching the first by loopback); one output prefix, as
    S3 merges every host's uploads. Returns (output dir, {host: exception or None})."""
    names = [f"algo-{i + 1}" for i in range(hosts)]
    port, out, errors = free_port(), tmp_path / f"out-{hosts}", {}
    for i, name in enumerate(names):
        for path in objects[i::hosts]:
            (tmp_path / name / "in").mkdir(parents=True, exist_ok=True)
            shutil.copy(path, tmp_path / name / "in" / path.name)

    def host(name):
        args = preprocess.parse_args(["--input-dir", str(tmp_path / name / "in"), "--output-dir",
                                      str(tmp_path / name / "out"), "--label", "Revenue", *extra])
        try:
            preprocess.run(args, preprocess.Cluster(names, name, port=port, resolve=lambda _: "127.0.0.1"))
        except preprocess.DataError as e:
            errors[name] = e

    threads = [threading.Thread(target=host, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for name in names:
        if (tmp_path / name / "out").exists():
            shutil.copytree(tmp_path / name / "out", out, dirs_exist_ok=True)
    return out, errors


def table():
    df = data.generate(1800, seed=11)
    df["PageValues"] = df["PageValues"].astype(object)
    df.loc[[7, 900], "PageValues"] = np.nan
    frames = [df.iloc[i::FILES].copy() for i in range(FILES)]
    frames[4] = pd.concat([frames[4], frames[1].iloc[:30], frames[4].iloc[:5]])  # duplicates across and within files
    return frames


def rows_by_split(out):
    return {name: sorted(map(tuple, frame.astype(str).to_numpy())) for name, frame in read_splits(out).items()}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharded")
    objects = shard_inputs(tmp, table())
    return {hosts: run_hosts(tmp / str(hosts), objects, hosts) for hosts in (1, 2, 3)}


def test_every_host_count_gives_the_same_rows_splits_schema_and_profile(outputs):
    assert all(not errors for _, errors in outputs.values())
    one = outputs[1][0]
    profile = json.loads((one / "profile" / "profile.json").read_text())
    assert profile["duplicates_dropped"] == 35 and sum(profile["rows"].values()) == 1800
    for hosts in (2, 3):
        out = outputs[hosts][0]
        assert rows_by_split(out) == rows_by_split(one)
        assert (out / "schema" / "schema.json").read_text() == (one / "schema" / "schema.json").read_text()
        merged = json.loads((out / "profile" / "profile.json").read_text())
        assert merged.pop("hosts") == hosts and merged.pop("input_files") != profile["input_files"]
        assert merged == {k: v for k, v in profile.items() if k not in ("hosts", "input_files")}


def test_each_host_writes_its_own_parts(outputs):
    out = outputs[3][0]
    writers = {p.name.split("-")[1] + "-" + p.name.split("-")[2] for p in (out / "train").glob("*.parquet")}
    assert writers == {"algo-1", "algo-2", "algo-3"}
    assert len(list((out / "train").glob("*.parquet"))) == 3 * 4  # --parts-per-host 4: training hosts get data


def test_a_key_column_keeps_its_rows_in_one_split(tmp_path):
    frames = table()
    for i, frame in enumerate(frames):
        frame["customer"] = [f"c{(i * 1000 + j) % 97}" for j in range(len(frame))]
    objects = shard_inputs(tmp_path, frames)
    out, errors = run_hosts(tmp_path, objects, 2, "--split-key", "customer", "--schema", '{"customer": "category"}')
    assert not errors
    where = {name: set(frame["customer"]) for name, frame in read_splits(out).items()}
    assert not (where["train"] & where["test"]) and not (where["train"] & where["validation"])


def test_a_bad_value_on_one_host_fails_every_host_with_its_message(tmp_path):
    frames = table()
    frames[3]["ExitRates"] = frames[3]["ExitRates"].astype(object)
    frames[3].iloc[4, frames[3].columns.get_loc("ExitRates")] = "n/a?"
    out, errors = run_hosts(tmp_path, shard_inputs(tmp_path, frames), 2)
    assert set(errors) == {"algo-1", "algo-2"}
    message = str(errors["algo-1"])
    assert message == str(errors["algo-2"]) and message.startswith("algo-2: column 'ExitRates'")
    assert "part-03.csv line 6" in message and not list(out.rglob("*parquet*"))


def test_a_host_without_objects_still_takes_part(tmp_path):
    objects = shard_inputs(tmp_path, [pd.concat(table())])
    out, errors = run_hosts(tmp_path, objects, 2)
    assert not errors and sum(json.loads((out / "profile" / "profile.json").read_text())["rows"].values()) > 1700
