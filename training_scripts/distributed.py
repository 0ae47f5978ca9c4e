"""One XGBoost model trained across the hosts of a SageMaker training job.

Set up as the SageMaker XGBoost container's `rabit_run` does it, so a script-mode
job behaves like the built-in algorithm: the hosts are SM_HOSTS sorted by name,
the first runs XGBoost's tracker on a fixed port (an instance runs one job, so
the port is free), every host joins XGBoost's collective with its position in
that list as its task id (ranks follow host order), and only the first host
writes the model. Inside the context, `xgb.train` and `QuantileDMatrix` on each
host's shard build one model: histograms and quantile sketches are summed
across hosts every round. What else must agree (category vocabularies, label
counts, out-of-fold predictions) goes through `allgather`.
"""
import contextlib
import json
import socket
import time

import numpy as np
from xgboost import collective
from xgboost.tracker import RabitTracker

PORT = 9099  # the container's rabit port
CONNECT_SECONDS = 600  # instances of one job boot within minutes of each other


class DistributedError(RuntimeError):
    """The hosts could not form one training cluster; the message names the host and why."""


class Cluster:
    """This host's place among the training job's hosts."""

    def __init__(self, hosts, current):
        self.hosts = sorted(hosts)
        if current not in self.hosts:
            raise DistributedError(f"current host {current!r} is not among SM_HOSTS {self.hosts}")
        self.current, self.rank, self.size = current, self.hosts.index(current), len(self.hosts)

    @classmethod
    def from_env(cls, env):
        """SM_HOSTS and SM_CURRENT_HOST as the training toolkit sets them; one host where they are absent."""
        return cls(json.loads(env.get("SM_HOSTS") or '["algo-1"]'), env.get("SM_CURRENT_HOST") or "algo-1")

    @property
    def is_master(self):
        return self.rank == 0

    def allgather(self, value):
        """[value of each host], in host order, on every host (one broadcast per host, as rabit_run's
        synchronize does)."""
        if self.size == 1:
            return [value]
        return [collective.broadcast(value if rank == self.rank else None, rank) for rank in range(self.size)]

    def allsum(self, array):
        """The element-wise sum of a numeric array over the hosts."""
        array = np.ascontiguousarray(array, dtype="float64")
        return array if self.size == 1 else collective.allreduce(array, collective.Op.SUM)

    @contextlib.contextmanager
    def collective(self, port=PORT, resolve=socket.gethostbyname):
        """XGBoost's collective over the hosts for the duration of the block (nothing with one host)."""
        if self.size == 1:
            yield self
            return
        tracker_ip = _resolve(resolve, self.hosts[0])
        tracker = None
        if self.is_master:
            tracker = RabitTracker(n_workers=self.size, host_ip=tracker_ip, port=port, sortby="task",
                                   timeout=CONNECT_SECONDS)
            tracker.start()
        args = {"dmlc_tracker_uri": tracker_ip, "dmlc_tracker_port": port, "dmlc_task_id": str(self.rank),
                "dmlc_timeout": CONNECT_SECONDS}
        try:
            _join(args, self.hosts[0], port)
            try:
                yield self
            finally:
                collective.finalize()
        finally:
            if tracker is not None:
                tracker.wait_for(timeout=60)
                tracker.free()


def _resolve(resolve, host):
    """The host's address; names of a job's instances resolve once its network is up, so keep asking."""
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            return resolve(host)
        except OSError as e:
            if time.monotonic() > deadline:
                raise DistributedError(f"cannot resolve host {host!r} ({e}); are all SM_HOSTS in this job?") from None
            time.sleep(1)


def _join(args, tracker_host, port):
    """Join the collective; the tracker may not listen yet, and a failed init is retried whole (a probe
    connection would confuse the tracker's protocol)."""
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            collective.init(**args)
            return
        except Exception as e:  # XGBoostError with the connection's reason
            if time.monotonic() > deadline:
                raise DistributedError(f"cannot join the tracker on {tracker_host}:{port}: {e}") from None
            time.sleep(1)
