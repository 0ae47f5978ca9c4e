"""Selective execution: run some steps again, reusing what the others produced in an earlier execution.

SageMaker's `SelectiveExecutionConfig` (`SourcePipelineExecutionArn`, `SelectedSteps`), locally:
the selected steps run with the definition given now (today's code), every step they read from
that is not selected is taken whole from the source execution's record (its response and property
files, so `Steps.Tune.BestTrainingJob...` resolves to the source's model), and the rest do not run.
A selection is refused before anything runs when a step it reads from did not succeed in the
source, or when it leaves out a step on a path between two selected ones (as SageMaker refuses).
"""
from __future__ import annotations

from pipelines.local.plan import RunError, Step


def needs(step: Step) -> set[str]:
    """What a step reads from or waits for, its branch's condition included."""
    return set(step.needs) | ({step.branch[0]} if step.branch else set())


def reused_steps(steps: dict[str, Step], selected: list[str], source: dict) -> dict[str, dict]:
    """Name -> the source's record of each step the selection reads from without running it."""
    if not selected:
        raise RunError("--steps names no step: give one or more, e.g. --steps Evaluate,QualityGate")
    unknown = [name for name in selected if name not in steps]
    if unknown:
        raise RunError(f"--steps {unknown[0]}: the pipeline has no such step; its steps are {', '.join(steps)}")
    if source["status"] == "Executing":
        raise RunError(f"execution {source['execution_id']} is still executing: select from a finished one")
    _refuse_gaps(steps, set(selected))
    recorded = {s["name"]: s for s in source["steps"]}
    reused = {}
    for name in selected:
        for need in sorted(needs(steps[name]) - set(selected)):
            earlier = recorded.get(need)
            if earlier is None or earlier["status"] != "Succeeded":
                how = "has no such step" if earlier is None else f"recorded it {earlier['status']}"
                raise RunError(f"step {name} reads from {need}, but execution {source['execution_id']} {how}: "
                               f"add {need} to --steps")
            reused[need] = {**earlier, "reused_from": source["execution_id"]}
    return reused


def _refuse_gaps(steps: dict[str, Step], selected: set[str]) -> None:
    """Every step on a path between two selected steps must be selected too: otherwise the later one
    would read an output the earlier one no longer matches."""
    downstream: dict[str, set[str]] = {name: set() for name in steps}
    for name, step in steps.items():
        for need in needs(step):
            downstream[need].add(name)

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(downstream[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += downstream[name]
        return seen

    for first in selected:
        after = reaches(first)
        for last in selected & after:
            gap = sorted(name for name in after - selected if last in reaches(name))
            if gap:
                raise RunError(f"--steps {first} and {last} leave out {', '.join(gap)} between them: "
                               f"select {', '.join(gap)} too")
