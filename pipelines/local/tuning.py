"""Search strategies of a hyperparameter tuning job, and the loop that drives them.

Nothing here knows about training jobs: `search` asks a strategy for the
hyperparameters of trial k and hands them to an ``evaluate`` callback (the job
handler runs a training job there). Proposals are a pure function of the seed,
the trial index and the results of earlier trials, so a rerun of the same
tuning job proposes the same values, also when trials run in parallel.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Protocol

_KINDS = ("Continuous", "Integer", "Categorical")
_SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
_CANDIDATES = 512  # random points at which Bayesian search scores expected improvement
# ResourceLimits.MaxRuntimeInSeconds: what CreateHyperParameterTuningJob accepts (botocore's service model)
MIN_RUNTIME, MAX_RUNTIME = 120, 15_768_000


@dataclass(frozen=True)
class Parameter:
    """One entry of ParameterRanges; values are strings, as SageMaker passes them."""

    name: str
    kind: str  # "Continuous" | "Integer" | "Categorical"
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Linear"
    values: tuple[str, ...] = ()

    def value_at(self, u: float) -> str:
        """The value at position ``u`` in [0, 1) of the (scaled) range: uniform ``u``
        gives the sampling distribution the ScalingType asks for."""
        if self.kind == "Categorical":
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        if self.kind == "Integer":
            # Widen by half a step so each integer owns an equal share of the scale.
            x = _from_unit(u, self.low - 0.5, self.high + 0.5, self.scaling)
            return str(int(min(max(math.floor(x + 0.5), self.low), self.high)))
        return repr(_from_unit(u, self.low, self.high, self.scaling))

    def features(self, value: str) -> list[float]:
        """Coordinates in the normalised search space (one-hot for categories)."""
        if self.kind == "Categorical":
            return [float(value == v) for v in self.values]
        if self.kind == "Integer":
            return [_to_unit(float(value), self.low - 0.5, self.high + 0.5, self.scaling)]
        return [_to_unit(float(value), self.low, self.high, self.scaling)]


def _from_unit(u: float, low: float, high: float, scaling: str) -> float:
    if scaling == "Logarithmic":
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    if scaling == "ReverseLogarithmic":  # dense near 1: log-uniform in (1 - value)
        return 1 - math.exp(math.log(1 - low) - u * (math.log(1 - low) - math.log(1 - high)))
    return low + u * (high - low)


def _to_unit(value: float, low: float, high: float, scaling: str) -> float:
    if high == low:
        return 0.0
    if scaling == "Logarithmic":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    if scaling == "ReverseLogarithmic":
        return (math.log(1 - low) - math.log(1 - value)) / (math.log(1 - low) - math.log(1 - high))
    return (value - low) / (high - low)


def parse_ranges(ranges: dict) -> list[Parameter]:
    """ParameterRanges -> Parameters, rejecting what SageMaker rejects (ValueError)."""
    params = []
    for kind in _KINDS:
        for spec in ranges.get(f"{kind}ParameterRanges") or []:
            params.append(_parameter(kind, spec))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"a hyperparameter appears in more than one range: {sorted(names)}")
    return params


def _range_problem(kind: str, low: float, high: float, scaling: str) -> str | None:
    if scaling not in _SCALINGS:
        return f"ScalingType must be one of {_SCALINGS}"
    if low > high:
        return "MinValue is greater than MaxValue"
    if kind == "Integer" and not (low.is_integer() and high.is_integer()):
        return "integer range bounds must be integers"
    if scaling == "Logarithmic" and low <= 0:
        return "Logarithmic scaling needs MinValue > 0"
    if scaling == "ReverseLogarithmic" and kind == "Integer":
        return "ReverseLogarithmic scaling is for continuous ranges only"
    if scaling == "ReverseLogarithmic" and not 0 <= low < high < 1:
        return "ReverseLogarithmic scaling needs 0 <= MinValue < MaxValue < 1"
    return None


def _parameter(kind: str, spec: dict) -> Parameter:
    name = spec["Name"]
    if kind == "Categorical":
        values = tuple(str(v) for v in spec.get("Values") or [])
        if not values:
            raise ValueError(f"categorical hyperparameter {name!r} has no Values")
        return Parameter(name, kind, values=values)
    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    scaling = spec.get("ScalingType", "Auto")
    problem = _range_problem(kind, low, high, scaling)
    if problem:
        raise ValueError(f"hyperparameter {name!r}: {problem}")
    # "Auto" lets SageMaker pick a scale; the local runner always picks linear.
    return Parameter(name, kind, low, high, "Linear" if scaling == "Auto" else scaling)


@dataclass
class Trial:
    index: int
    params: dict[str, str]
    score: float | None  # objective oriented so that larger is better; None: no objective value
    payload: Any = None  # whatever the evaluator wants back (the training job summary)


class Strategy(Protocol):
    uses_history: bool  # True: proposals depend on earlier results, so `search` waits for them

    def propose(self, index: int, observed: list[Trial], pending: list[dict[str, str]]) -> dict[str, str]: ...


def _sample(params: list[Parameter], rng: random.Random) -> dict[str, str]:
    return {p.name: p.value_at(rng.random()) for p in params}


class RandomSearch:
    uses_history = False

    def __init__(self, params: list[Parameter], seed: int):
        self.params, self.seed = params, seed

    def propose(self, index, observed, pending):
        return _sample(self.params, random.Random(f"{self.seed}:{index}"))


class GridSearch:
    """Every combination of the categorical values, first parameter slowest.

    SageMaker's grid search takes categorical ranges only; so does this one.
    """

    uses_history = False

    def __init__(self, params: list[Parameter]):
        numeric = [p.name for p in params if p.kind != "Categorical"]
        if numeric or not params:
            raise ValueError(
                "Grid strategy needs categorical parameter ranges only "
                f"(found non-categorical: {numeric or 'no ranges at all'})"
            )
        self.names = [p.name for p in params]
        self.grid = list(itertools.product(*(p.values for p in params)))

    def propose(self, index, observed, pending):
        return dict(zip(self.names, self.grid[index]))


class BayesianSearch:
    """Gaussian-process regression over the normalised space + expected improvement.

    The first trials are random; later ones maximise expected improvement over
    random candidate points. Trials still running count as "constant liars" at
    the worst value seen, which keeps parallel proposals apart.
    """

    uses_history = True

    def __init__(self, params: list[Parameter], seed: int):
        if not params:
            raise ValueError("Bayesian strategy needs at least one parameter range")
        self.params, self.seed = params, seed
        self.initial = max(3, len(params) + 1)

    def propose(self, index, observed, pending):
        rng = random.Random(f"{self.seed}:{index}")
        scored = [t for t in observed if t.score is not None]
        if len(scored) < self.initial:
            return _sample(self.params, rng)
        candidates = [_sample(self.params, rng) for _ in range(_CANDIDATES)]
        scores = [t.score for t in scored]
        points = [t.params for t in scored] + list(pending)
        targets = scores + [min(scores)] * len(pending)
        improvement = self._expected_improvement(points, targets, candidates, max(scores))
        return candidates[max(range(len(candidates)), key=improvement.__getitem__)]

    def _encode(self, points):
        import numpy as np

        return np.array([[x for p in self.params for x in p.features(point[p.name])] for point in points])

    def _expected_improvement(self, points, targets, candidates, best):
        import numpy as np
        from scipy.stats import norm
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        # Bounds suit a unit cube: no length scale shorter than a twentieth of a range.
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(0.3, (0.05, 5.0), nu=2.5)
                  + WhiteKernel(1e-3, (1e-6, 1e-1)))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=self.seed % 2**32)
        with warnings.catch_warnings():  # hyperparameters at a bound are expected with few points
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(self._encode(points), np.array(targets))
        mean, std = gp.predict(self._encode(candidates), return_std=True)
        gain = mean - best
        z = np.divide(gain, std, out=np.zeros_like(gain), where=std > 0)
        return np.where(std > 0, gain * norm.cdf(z) + std * norm.pdf(z), 0.0)


def seed_for(job_name: str, random_seed: int | None = None) -> int:
    """The tuning job's RandomSeed when given, else one derived from its name."""
    if random_seed is not None:
        return int(random_seed)
    return int.from_bytes(hashlib.sha256(job_name.encode()).digest()[:8], "big")


def plan(config: dict, seed: int) -> tuple[Strategy, int]:
    """HyperParameterTuningJobConfig -> (strategy, number of training jobs)."""
    name = config.get("Strategy", "Bayesian")
    params = parse_ranges(config.get("ParameterRanges") or {})
    limit = int((config.get("ResourceLimits") or {}).get("MaxNumberOfTrainingJobs") or 0)
    if name == "Grid":
        strategy = GridSearch(params)
        return strategy, min(len(strategy.grid), limit) if limit else len(strategy.grid)
    if limit < 1:
        raise ValueError(f"{name} strategy needs ResourceLimits.MaxNumberOfTrainingJobs >= 1")
    if name == "Random":
        return RandomSearch(params, seed), limit
    if name == "Bayesian":
        return BayesianSearch(params, seed), limit
    if name == "Hyperband":
        raise ValueError("the Hyperband strategy is not supported by the local runner; use Random, Grid or Bayesian")
    raise ValueError(f"unknown tuning Strategy {name!r}; use Random, Grid or Bayesian")


def search(strategy: Strategy, count: int, parallel: int, evaluate: Callable[[int, dict[str, str]], Trial]) -> list[Trial]:
    """Run ``count`` trials, at most ``parallel`` at a time; results in trial order.

    For strategies that learn from results, trial k is proposed once trials
    0..k-parallel have finished, from exactly those results: the same history
    whatever order the running trials happen to finish in.
    """
    parallel = max(1, min(parallel, count))
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="trial") as pool:
        futures, proposals = [], []
        for index in range(count):
            settled = max(0, index - parallel + 1)
            observed = [f.result() for f in futures[:settled]] if strategy.uses_history else []
            params = strategy.propose(index, observed, proposals[settled:index])
            proposals.append(params)
            futures.append(pool.submit(evaluate, index, params))
        return [future.result() for future in futures]
