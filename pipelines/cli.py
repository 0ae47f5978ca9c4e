"""The command line behind deploy.py (and the `ml-pipelines` command): parse flags, call
`pipelines.commands`, print results.

Every command compiles first, so what is diffed, upserted, started or run
locally is always the JSON of the current definition. `--local` (with `--home`) picks the local
target for every command that acts on one; the definition's own settings get the flags it declares.
Output that a closed pipe (`| head`) cuts short ends quietly, and never stops a run.
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from datetime import datetime

from pipelines import commands, definitions
from pipelines import settings as declared_settings
from pipelines.commands import DEFAULT_DEFINITION, Flags, Workspace
from pipelines.files import write_atomically
from pipelines.targets import program


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = _parser(declared_settings.declared(_definition_module(argv)))
        args = parser.parse_args(argv)
        _quiet_libraries(getattr(args, "verbose", False))
        return args.command(args) or 0
    except commands.user_errors() as e:
        _say(f"error: {e}")
        return 2
    except commands.cloud_errors() as e:
        _say(f"error: {e}")
        return 1
    except KeyboardInterrupt:  # outside a run (a run stops its jobs and records itself Stopped)
        _say("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): what it wanted it has
        _quiet_stdout()
        return 0


def _quiet_libraries(verbose: bool) -> None:
    """Warnings only, unless --verbose: the SDK calls logging.basicConfig(level=INFO) when imported, which
    would put botocore's INFO lines (where credentials were found...) among the command's output. A
    handler installed first makes that call do nothing."""
    level = logging.INFO if verbose else logging.WARNING
    if not logging.root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s:%(name)s:%(message)s")
    logging.root.setLevel(level)


def _say(line: str) -> None:
    """A line for the person at the terminal (stderr); once the terminal is gone (a closed pipe, a hung-up
    terminal), nothing: a run goes on, and records what it does."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass


def _print(line: str) -> None:
    """A line of the command's output (stdout), flushed: a reader gets it as soon as it is known. A reader
    that went away (`| head`) stops nothing: the rest of the output goes nowhere."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _quiet_stdout()


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of a closed pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _workspace(args) -> Workspace:
    return Workspace(Flags.of(args, args.declared), say=_say)


def _definition_module(argv: list[str]):
    """The module of the definition whose flags the command line may use, read before it is parsed: the
    one `--definition` names, else the one an execution given with `--from`/`--resume` recorded, else
    the default (the tabular pipeline)."""
    first = argparse.ArgumentParser(add_help=False)
    for flag in ("--definition", "--from", "--resume", "--home"):
        first.add_argument(flag)
    first.add_argument("--local", action="store_true")
    known = first.parse_known_args(argv)[0]
    recorded = known.local and (getattr(known, "from") or known.resume)
    ref = known.definition or (recorded and _recorded_definition(known.home, recorded)) or DEFAULT_DEFINITION
    return definitions.load(ref)


def _recorded_definition(home: str | None, execution: str) -> str | None:
    from pipelines.local import LocalHome

    try:
        record = (LocalHome(home) if home else LocalHome.default()).execution(execution)
    except (FileNotFoundError, ValueError):
        return None
    definition = (record.get("origin") or {}).get("definition")
    return definition if definition and (os.path.exists(definition) or "/" not in definition) else None


# --- the pipeline -----------------------------------------------------------------------------


def cmd_compile(args):
    compiled = _workspace(args).compiled()
    if args.output:
        write_atomically(args.output, compiled.definition)
        print(f"wrote {args.output} ({len(compiled.definition)} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(compiled.definition)


def cmd_diff(args):
    ws = _workspace(args)
    name, lines = commands.diff(ws)
    if lines is None:
        print(f"{name}: not deployed in {ws.environment.region} yet (`python deploy.py upsert` creates it)")
        return 1
    print("\n".join(lines) if lines else f"{name}: deployed definition is up to date")
    return 1 if lines else 0


def cmd_upsert(args):
    print(commands.upsert(_workspace(args)))


def cmd_start(args):
    """Start an execution in SageMaker (no upsert); with --wait, follow it as `run` does."""
    return _run(args, upsert=False, wait=args.wait)


def cmd_run(args):
    return _run(args, upsert=True, wait=True)


def _run(args, *, upsert: bool, wait: bool) -> int:
    def progress(event):
        if not (getattr(args, "quiet", False) and event["event"] in ("trial_finished", "progress")):
            _say(_describe(event))

    options = commands.RunOptions(
        parameters=args.parameter, input_data=args.input_data, source=args.source, steps=args.steps,
        resume=getattr(args, "resume", None), definition_json=getattr(args, "definition_json", None),
        stage=getattr(args, "stage", []), job_env=getattr(args, "job_env", None),
        max_parallel_steps=getattr(args, "max_parallel_steps", 4), keep_trials=getattr(args, "keep_trials", False),
        wait=wait, upsert=upsert, timeout=args.timeout,
        poll=args.poll, on_event=None if getattr(args, "json", False) else progress,
        on_started=None if getattr(args, "json", False) else _print)
    summary = commands.run(_workspace(args), options)
    if not wait:
        return 0
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, default=str))
    else:
        _print_summary(summary)
    return 0 if summary["status"] == "Succeeded" else 1


def _describe(event: dict) -> str:
    if event["event"] == "staged":
        return event["line"]
    if event["event"] == "step_status":  # SageMaker's step statuses, as `wait` sees them change
        return f"  {event['step']}: {event['status']}"
    parts = [event.get("time", "")[11:19], f"{event.get('step') or 'execution':<24}", event.get("event", "")]
    if event["event"] == "trial_finished":
        return "  ".join([*parts[:2], _describe_trial(event)])
    if event["event"] == "progress":
        return "  ".join([*parts[:2], _describe_progress(event)])
    for key in ("status", "reason", "attempt", "seconds", "log"):
        if event.get(key) is not None:
            parts.append(f"{key}={event[key]}")
    return "  ".join(str(p) for p in parts if p != "")


def _describe_trial(event: dict) -> str:
    """`trial 3/12  eta=0.21 max_depth=5  validation:auc=0.9123  best 0.9201 (trial 2)  3 done, 9 left, 40 s left`."""
    hps = " ".join(f"{k}={_short_number(v)}" for k, v in sorted(event["hyperparameters"].items()))
    stopped = "stopped, " if event.get("status") == "Stopped" else ""
    outcome = f"{stopped}{event['objective']}={event['value']:.4f}" if event["value"] is not None else \
        "stopped" if stopped else f"failed: {str(event['failure_reason']).splitlines()[0][:80]}"
    best = f"best {event['best']:.4f} (trial {event['best_trial']})" if event["best"] is not None else "no best yet"
    return f"trial {event['trial']}/{event['of']}  {hps}  {outcome}  {best}  {_tuning_state(event)}".rstrip()


def _describe_progress(event: dict) -> str:
    """A running job's latest line; in a tuning job, `trial 2/4: <line>  1 done, 2 left, 74 s left`."""
    line = event["line"].strip()[:160]
    if "trial" not in event:
        return line
    return f"trial {event['trial']}/{event['of']}: {line}  {_tuning_state(event)}"


def _tuning_state(event: dict) -> str:
    if "done" not in event:
        return ""
    left = "" if event.get("seconds_left") is None else f", {event['seconds_left']:.0f} s left"
    return f"{event['done']} done, {event['left']} left{left}"


def _short_number(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def _print_summary(summary: dict) -> None:
    out = _Lines()
    took = "" if summary["seconds"] is None else f" in {summary['seconds']:.1f} s"
    print(f"\nexecution {summary['execution_id']} of {summary['pipeline_name']}: {summary['status']}{took}", file=out)
    for step in summary["steps"]:
        if step["reused_from"]:
            print(f"  {step['name']:<24} {step['type']:<14} {'reused':<10} from {step['reused_from']}", file=out)
            continue
        seconds = "" if step["seconds"] is None else f"{step['seconds']:.1f} s"
        print(f"  {step['name']:<24} {step['type'] or '':<14} {step['status'] or '':<10} "
              f"{'cached' if step['cache_hit'] else '':<7} {seconds}", file=out)
    gate = summary["gate"]
    if gate and gate["value"] is not None:
        against = "" if gate["threshold"] is None or gate["passed"] is None else \
            f" {'passes' if gate['passed'] else 'fails'} {gate['operator']} {gate['threshold']:.4f}"
        if against and gate["rule"]:
            against += f" ({gate['rule']}; a constant predictor scores {gate['baseline']:.4f})"
        print(f"  gate: {gate['metric']} = {gate['value']:.4f}{against}", file=out)
    if summary["registered_model"]:
        print(f"  registered: {summary['registered_model']['ModelPackageArn']}", file=out)
    if summary["failure_reason"]:
        print(f"  failure: {summary['failure_reason']}", file=out)
        if summary["failure_log"]:
            print(f"  the rest is in {summary['failure_log']}", file=out)
    if summary["status"] == "Stopped":
        print(f"  stopped: {summary['stop_reason']}; steps cut short: {', '.join(summary['stopped_steps']) or 'none'}",
              file=out)
    if summary.get("report"):
        print(f"  report: {summary['report']}", file=out)
    if summary.get("next"):
        print("next:", file=out)
        for line in summary["next"]:
            print(f"  {line}", file=out)


class _Lines:
    """stderr as `print` sees it, saying nothing once the terminal is gone (`_say`)."""

    def write(self, text: str) -> None:
        try:
            sys.stderr.write(text)
        except (BrokenPipeError, OSError):
            pass

    def flush(self) -> None:
        try:
            sys.stderr.flush()
        except (BrokenPipeError, OSError):
            pass


def cmd_stop(args):
    print(commands.stop(_workspace(args), args.execution))


def cmd_report(args):
    print(commands.report(_workspace(args), args.execution_id, args.output))


def cmd_runs(args):
    ws = _workspace(args)
    rows = commands.runs(ws, last=args.last)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print(f"no executions yet: run `{ws.target.hint('run')}`")
    else:
        width = max(len("PIPELINE"), *(len(str(row["pipeline"] or "")) for row in rows))
        print(f"{'EXECUTION':<14} {'PIPELINE':<{width}} {'STATUS':<10} {'STARTED':<20} {'DURATION':>9}  {'GATE':<34} MODEL")
        for row in rows:
            started = str(row["started"] or "")[:19].replace("T", " ")
            model = f"v{row['model_version']}" if row["model_version"] is not None else "—"
            note = f"  (steps {','.join(row['selective']['selected_steps'])} of {row['selective']['source_execution']})" \
                if row.get("selective") else "  (its runner died)" if row.get("runner_gone") else ""
            print(f"{row['execution_id']:<14} {row['pipeline'] or '—':<{width}} {row['status']:<10} {started:<20} "
                  f"{_seconds(row['seconds']):>9}  {_gate_text(row['gate']):<34} {model}{note}")


def _seconds(seconds) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _gate_text(gate: dict | None) -> str:
    if not gate or gate["value"] is None:
        return "—"
    verdict = "" if gate["passed"] is None else "  pass" if gate["passed"] else "  FAIL"
    metric = gate["metric"].removesuffix(".value").rsplit(".", 1)[-1]
    threshold = f" {gate['operator']} {_number(gate['threshold'])}" if gate["threshold"] is not None else ""
    return f"{metric} {_number(gate['value'])}{threshold}{verdict}"


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def cmd_compare(args):
    result = commands.compare(_workspace(args), args.first, args.second)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    a, b = result["runs"]
    for warning in result["warnings"]:
        _say(f"warning: {warning}: their metrics do not measure the same thing")
    print(f"{'':<28} {'A ' + a['execution_id']:<24} {'B ' + b['execution_id']:<24}")
    print(f"{'pipeline':<28} {_cell(a['pipeline_name']):<24} {_cell(b['pipeline_name']):<24}")
    print(f"{'status':<28} {a['status']:<24} {b['status']:<24}")
    print("parameters")
    for row in result["parameters"]:
        print(f"  {row['name']:<26} {_cell(row['a']):<24} {_cell(row['b']):<24}{'  changed' if row['changed'] else ''}")
    print("metrics" + ("" if result["metrics"] else "  (neither run has a model-quality report)"))
    for row in result["metrics"]:
        delta = "" if row["delta"] is None else f"{row['delta']:+.4f}"
        print(f"  {row['name']:<26} {_cell(row['a']):<24} {_cell(row['b']):<24}{delta}")
    versions = [f"v{v}" if v is not None else "none" for v in result["models"]]
    print(f"{'model version':<28} {versions[0]:<24} {versions[1]:<24}")
    print("code" + ("  (the same in both)" if not result["code"] else ""))
    for change in result["code"]:
        files = "; ".join(change["files"]) if change["files"] else f"{', '.join(change['a']) or 'none'} -> " \
                                                                   f"{', '.join(change['b']) or 'none'}"
        print(f"  {change['step']}: {files}")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    text = "—" if value is None else str(value)
    return text if len(text) <= 22 else "…" + text[-21:]


def cmd_logs(args):
    for line in commands.logs(_workspace(args), args.execution, args.step, follow=args.follow):
        print(line, flush=args.follow)


def cmd_init(args):
    written = commands.init(args.name, template=args.template, folder=args.dir, config=args.config)
    print("\n".join(str(path) for path in written))
    definition, test = written[0], next(p for p in written if p.name == "test_pipeline.py")
    _say(f"next: {program()} run --local --definition {definition}   and   python -m pytest {test}")


# --- registered models ------------------------------------------------------------------------


def cmd_models(args):
    ws = _workspace(args)
    groups = commands.models(ws, group=args.group, every=args.all, last=args.last)
    if args.json:
        print(json.dumps(groups, indent=2, default=str))
        return
    print("\n".join(format_models(groups)) if groups else f"no model packages yet: run `{ws.target.hint('run')}`")


def format_models(groups: list[dict]) -> list[str]:
    """The listing `deploy.py models` prints, local or SageMaker: a group per line, then its versions."""
    lines = []
    for group in groups:
        model = (group["Versions"][-1].get("CustomerMetadataProperties") or {}) if group["Versions"] else {}
        what = f"  ({model['problem_type']} model of {model['label']!r})" if {"problem_type", "label"} <= set(model) else ""
        lines.append(group["ModelPackageGroupName"] + what)
        for v in group["Versions"]:
            created = v.get("CreationTime")
            created = created.isoformat(timespec="seconds") if isinstance(created, datetime) else created or ""
            same = f"  identical to v{v['IdenticalTo']} (a cached re-run)" if v.get("IdenticalTo") else ""
            lines.append(f"  v{v.get('ModelPackageVersion', '?'):<3} {v.get('ModelApprovalStatus', ''):<22} "
                         f"{created}  {_key_metrics(v)}{same}")
    return lines


def _key_metrics(version: dict) -> str:
    """The scalar metrics of the version's model-quality report, e.g. roc_auc=0.93."""
    report = (version.get("Metrics") or {}).get("ModelQuality.Statistics") or {}
    flat = {k: v["value"] for section in report.values() if isinstance(section, dict)
            for k, v in section.items() if isinstance(v, dict) and isinstance(v.get("value"), (int, float))}
    return "  ".join(f"{k}={v:.4f}" for k, v in list(flat.items())[:4])


def cmd_approve(args, status="Approved"):
    package = commands.set_approval(_workspace(args), args.version, status, group=args.group,
                                    description=args.description)
    print(f"{package['ModelPackageArn']}: {package['ModelApprovalStatus']}")


def cmd_reject(args):
    return cmd_approve(args, status="Rejected")


def cmd_deploy_endpoint(args):
    result, hint = commands.deploy_endpoint(_workspace(args), model_package=args.model_package,
                                            group=args.group, endpoint_name=args.endpoint_name,
                                            instance_type=args.instance_type,
                                            instance_count=args.instance_count, wait=args.wait)
    print(f"{result['Action']} endpoint {result['EndpointName']}: config {result['EndpointConfigName']} serves "
          f"{result['ModelPackageArn']}")
    print(hint, file=sys.stderr)


def cmd_serve(args):
    commands.serve(_workspace(args), model_package=args.model_package, group=args.group,
                   endpoint_name=args.endpoint_name,
                   host=args.host, port=args.port, max_payload_mb=args.max_payload_mb)


def cmd_predict(args):
    output = commands.predict(_workspace(args), sys.stdin.buffer.read(), url=args.url,
                              endpoint_name=args.endpoint, content_type=args.content_type, accept=args.accept)
    sys.stdout.write(output.decode("utf-8"))


def cmd_batch_transform(args):
    job = commands.batch_transform(_workspace(args), input_path=args.input, output=args.output,
                                   model_package=args.model_package, group=args.group,
                                   instance_type=args.instance_type, wait=args.wait)
    if job.get("TransformJobStatus"):
        _say(f"{job['TransformJobName']}: {job['TransformJobStatus']}, output {job['TransformOutput']['S3OutputPath']}")
    print(job["Output"])


def cmd_prune(args):
    result = commands.prune(_workspace(args), keep=args.keep, older_than=args.older_than, dry_run=args.dry_run)
    for what, path, size, execution in result["items"]:
        label = f"execution {execution}" if what == "execution" else what
        print(f"  {_bytes(size):>9}  {label:<26} {path}")
    if result["kept"]:
        print("kept: " + "; ".join(f"{execution}: {why}" for execution, why in result["kept"].items()))
    print(f"would free {_bytes(result['size'])}" if args.dry_run else f"freed {_bytes(result['freed'])}")


def _bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _report_arguments(p):
    p.add_argument("execution_id", metavar="EXECUTION_ID", help="a local execution (see runs/ under the home)")
    p.add_argument("--output", "-o", metavar="FILE", help="default: runs/<EXECUTION_ID>/report.html in the home")


# --- parser -----------------------------------------------------------------------------------


def _step_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


class _Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" for a flag it does not know: the closest flags of the command."""

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            command = getattr(parsed, "parser", self)
            command.error(_unknown(unknown, command))
        return parsed


def _unknown(extras: list[str], parser: argparse.ArgumentParser) -> str:
    flags = [option for action in parser._actions for option in action.option_strings]
    words = []
    for extra in extras:
        close = difflib.get_close_matches(extra.split("=", 1)[0], flags, n=1, cutoff=0.6) if extra.startswith("-") else []
        words.append(f"{extra} (did you mean {close[0]}?)" if close else extra)
    return f"unrecognized arguments: {' '.join(words)}"


def _parser(declared: type | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=program(), formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Take an ML pipeline from a Python definition to SageMaker Pipelines, or run the very same "
                    "definition offline,\nthen follow, compare and serve what it produced. The default pipeline is "
                    "the tabular one: any table, its label, its problem type.",
        epilog="start here:\n"
               f"  {program()} run --local --definition examples/purchase_intent   the worked example, offline\n"
               f"  {program()} run --local --input-data t.csv --label y          your table (--problem-type ...)\n"
               f"  {program()} runs --local                   what ran, newest first\n"
               f"  {program()} report latest                  the report of the newest local run\n"
               f"  {program()} init NAME                      a pipeline of your own\n"
               "each command has its own --help")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    where = argparse.ArgumentParser(add_help=False)  # which settings and AWS account: every command that reads them
    where.add_argument("--verbose", "-v", action="store_true", help="also show the AWS libraries' INFO log lines")
    w = where.add_argument_group("configuration (ml-pipelines.toml over the product's defaults; these flags win)")
    w.add_argument("--env", default="dev", help="environment table of the config files (default: dev)")
    w.add_argument("--config", metavar="FILE",
                   help="the project's settings file, over the product's defaults (default: ./ml-pipelines.toml)")
    w.add_argument("--region", help="AWS region (default: config, then AWS_REGION / profile)")
    which = argparse.ArgumentParser(add_help=False)  # which pipeline: commands that find it by name
    which.add_argument_group("the pipeline").add_argument(
        "--definition", metavar="FILE.py|FOLDER|MODULE",
        help=f"the pipeline: a .py file, a folder holding pipeline.py, or a dotted module with definition(cfg) "
             f"(default: {DEFAULT_DEFINITION}, any table)")
    common = argparse.ArgumentParser(add_help=False, parents=[where, which])  # what shapes the definition too
    g = common.add_argument_group("where it runs (the config files', overridden by these flags)")
    g.add_argument("--role-arn", help="SageMaker execution role ARN")
    g.add_argument("--bucket", help="S3 bucket for code, data and outputs")
    own = common.add_argument_group("the definition's own settings (its [pipeline.NAME] table's, overridden by these)")
    own.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                     help="set one of the definition's settings (repeatable)")
    for option in declared_settings.options(declared).values():
        if option.flag:
            _add_setting_flag(own, option)
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", help="local runner home (default: $PIPELINES_LOCAL_HOME or ./.local-pipelines)")
    target = argparse.ArgumentParser(add_help=False, parents=[home])  # where a command acts: SageMaker, or --local
    target.add_argument("--local", action="store_true",
                        help="the local runner, its home, store and registry (no AWS, no Docker) instead of SageMaker")

    running = argparse.ArgumentParser(add_help=False)
    running.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                         help="override a pipeline parameter (repeatable)")
    running.add_argument("--input-data", metavar="PATH|s3://...", help="data to run on (sets InputData)")
    running.add_argument("--from", dest="source", metavar="EXECUTION",
                         help="run only --steps again, reusing this execution's other outputs, its parameters "
                              "(-p overrides them) and the settings it was built with")
    running.add_argument("--steps", type=_step_list, default=[], metavar="STEP[,STEP]",
                         help="with --from: the steps to run, with today's code and definition")
    running.add_argument("--timeout", type=float, default=6 * 3600,
                         help="SageMaker: seconds to wait for the execution to end (default 6 h)")
    running.add_argument("--poll", type=float, default=15.0, help=argparse.SUPPRESS)

    def add(name, func, help, parents=(common,)):
        p = sub.add_parser(name, parents=list(parents), help=help, description=help)
        p.set_defaults(command=func, parser=p)
        return p

    add("compile", cmd_compile, "print the pipeline definition JSON").add_argument(
        "--output", "-o", help="write it to FILE instead of stdout")
    add("diff", cmd_diff, "compare the compiled definition with the deployed one (exit 1 when they differ)")
    add("upsert", cmd_upsert, "upload code and create or update the pipeline; prints its ARN")
    start = add("start", cmd_start, "start an execution in SageMaker; prints its ARN", (common, running))
    start.add_argument("--wait", action="store_true", help="follow the execution; exit 1 unless it succeeds")
    run = add("run", cmd_run, "upsert + start + wait; with --local, on the local runner", (common, running, target))
    run.add_argument("--json", action="store_true", help="print one JSON summary instead of progress")
    run.add_argument("--quiet", "-q", action="store_true", help="local: no line per finished tuning trial")
    run.add_argument("--resume", metavar="EXECUTION_ID",
                     help="local: finish a failed or stopped execution as it was recorded (its definition, settings "
                          "and parameters); to run today's code on its outputs, use --from and --steps")
    run.add_argument("--max-parallel-steps", type=int, default=4, help="local: steps running at once")
    run.add_argument("--definition-json", metavar="FILE",
                     help="run this definition JSON (any SageMaker pipeline) instead of compiling --definition")
    run.add_argument("--stage", action="append", default=[], metavar="s3://BUCKET/KEY=LOCAL_PATH",
                     help="local: put a file or folder into the local store at that URI first (repeatable)")
    run.add_argument("--keep-trials", action="store_true",
                     help="local: keep the folders of a tuning step's losing trials (removed when it ends)")
    run.add_argument("--job-env", choices=("image", "host"),
                     help="local: jobs run in their image's package versions (cached virtualenvs; the default, "
                          "or $PIPELINES_JOB_ENV) or on this Python (host)")
    stop = add("stop", cmd_stop, "stop a running execution: its jobs end, it is recorded Stopped and can be resumed",
               (where, target))
    stop.add_argument("execution", metavar="EXECUTION", help="a local execution id with --local, else its ARN")
    group = argparse.ArgumentParser(add_help=False)
    group.add_argument("--group", metavar="NAME",
                       help="model package group (default: the one the flags and definition name, else the one "
                            "of the latest run)")
    models = add("models", cmd_models, "list a model package group's versions (that of the latest run, unless "
                                       "named) or every group's", (common, group, target))
    models.add_argument("--all", action="store_true", help="every model package group")
    models.add_argument("--last", type=int, default=10, help="the newest N versions per group (default 10)")
    models.add_argument("--json", action="store_true", help="print the groups and versions as JSON")
    runs = add("runs", cmd_runs, "list executions, newest first: pipeline, status, start, duration, gate, "
                                 "registered version", (where, which, target))
    runs.add_argument("--last", type=int, default=20, help="the newest N executions (default 20)")
    runs.add_argument("--json", action="store_true", help="print the rows as JSON")
    compare = add("compare", cmd_compare, "show two executions side by side: parameters, metrics and their "
                                          "deltas, model versions, code that changed", (where, which, target))
    compare.add_argument("first", metavar="A", help="execution id (or latest; in SageMaker also an ARN)")
    compare.add_argument("second", metavar="B", help="the execution to compare with A (deltas are B - A)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    logs = add("logs", cmd_logs, "print the logs of an execution's steps and jobs (SageMaker: from CloudWatch)",
               (where, which, target))
    logs.add_argument("execution", metavar="EXECUTION", help="execution id or latest (in SageMaker also an ARN)")
    logs.add_argument("step", nargs="?", metavar="STEP|JOB", help="one step, or one job (a tuning trial), only")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the execution ends")

    package = argparse.ArgumentParser(add_help=False)
    package.add_argument("--model-package", default="latest-approved", metavar="ARN|VERSION|latest-approved",
                         help="the model package version (default: the newest Approved one)")
    package.add_argument("--instance-type", help="default: inference_instance_type of the config")
    for name, func, verb in (("approve", cmd_approve, "approve"), ("reject", cmd_reject, "reject")):
        p = add(name, func, f"{verb} a version of a model package group", (common, group, target))
        p.add_argument("version", metavar="VERSION|latest|ARN", help="version number, latest, or a model package ARN")
        p.add_argument("--description", help="SageMaker: the ApprovalDescription")
    deploy = add("deploy-endpoint", cmd_deploy_endpoint, "create the endpoint, or update it to a new endpoint config",
                 (common, package, group, target))
    deploy.add_argument("--endpoint-name", help="default: <model package group>-<env>")
    deploy.add_argument("--instance-count", type=int, default=1, help="SageMaker: instances behind the endpoint")
    deploy.add_argument("--wait", action="store_true", help="SageMaker: wait until the endpoint is InService")
    serve = add("serve", cmd_serve, "serve a locally registered model over HTTP (SageMaker's /ping and /invocations)",
                (common, group, target))
    serve.add_argument("--model-package", metavar="ARN|VERSION|latest-approved",
                       help="default: what --endpoint-name serves, else the newest Approved version")
    serve.add_argument("--endpoint-name", help="serve what `deploy-endpoint --local` set this endpoint to")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--max-payload-mb", type=float, default=6,
                       help="larger requests get 413 (default 6, as SageMaker)")
    predict = add("predict", cmd_predict, "score CSV rows from standard input; prints one prediction per row",
                  (where, target))
    predict.add_argument("--endpoint", help="SageMaker endpoint name")
    predict.add_argument("--url", default="http://127.0.0.1:8080", help="--local: the server (default %(default)s)")
    predict.add_argument("--content-type", default="text/csv", help="of the input (default text/csv)")
    predict.add_argument("--accept", default="text/csv",
                         help="of the output (default text/csv; text/csv;header=present adds a header row)")
    transform = add("batch-transform", cmd_batch_transform, "score a file or prefix with a batch transform job",
                    (common, package, group, target))
    transform.add_argument("--input", required=True, metavar="PATH|s3://...",
                           help="CSV with a header (a label column is ignored): file, folder or S3 prefix")
    transform.add_argument("--output", metavar="s3://...",
                           help="default: <bucket>/ml-pipelines/transform/<job name>")
    transform.add_argument("--wait", action="store_true", help="SageMaker: wait for the job to finish")
    prune = add("prune", cmd_prune, "free a local home: old executions, losing tuning trials' folders, batch "
                                     "transforms' unpacked models; never a registered model's run, nor one going on",
                (where, target))
    prune.add_argument("--keep", type=int, default=5, help="the newest N executions stay (default 5)")
    prune.add_argument("--older-than", metavar="AGE", help="only executions started before AGE ago: 30m, 12h, 7d, 2w")
    prune.add_argument("--dry-run", action="store_true", help="list what would be freed, delete nothing")
    _report_arguments(add("report", cmd_report, "write the HTML report of a local run; prints its path", (home,)))
    init = add("init", cmd_init, "scaffold a new pipeline: definition, scripts, inference handlers, test, "
                                 "config table", ())
    init.add_argument("name", metavar="NAME", help="the pipeline's name (letters, digits, - and _)")
    init.add_argument("--template", choices=("tabular", "minimal"), default="tabular",
                      help="tabular: tuning and a quality gate; minimal: train, evaluate, register (default tabular)")
    init.add_argument("--dir", help="folder to write it into (default: ./NAME)")
    init.add_argument("--config", metavar="FILE",
                      help="settings file to add [pipeline.NAME] to (default: ./ml-pipelines.toml, made if need be)")
    parser.set_defaults(declared=declared)
    return parser


def _add_setting_flag(group, option: declared_settings.Option) -> None:
    """The flag a definition declares for one of its settings: --name VALUE, or --name/--no-name."""
    text = f"{option.help} (default: {option.default!r})" if option.help else f"default: {option.default!r}"
    if option.type is bool:
        group.add_argument(option.flag_name, dest=option.name, action=argparse.BooleanOptionalAction, default=None,
                           help=text)
    else:
        group.add_argument(option.flag_name, dest=option.name, choices=option.choices or None, help=text,
                           metavar=None if option.choices else option.name.upper())
