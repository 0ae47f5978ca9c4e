"""The command line behind deploy.py: parse flags, call pipelines.*, print results.

Every command compiles first, so what is diffed, upserted, started or run
locally is always the JSON of the current definition.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from pathlib import Path

from pipelines import dsl
from pipelines.config import PROBLEM_TYPES, ConfigError, load_config

DEFAULT_DEFINITION = "pipelines.purchase_intent"
DEFAULT_REGION = "us-east-1"  # image URIs are regional; compile needs one even offline


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args) or 0
    except (ConfigError, dsl.DefinitionError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except _cloud_error() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


class UserError(ValueError):
    """Bad command-line input, reported without a traceback."""


def _cloud_error():
    from pipelines.cloud import CloudError

    return CloudError


# --- shared pieces ----------------------------------------------------------------------------


def _config(args):
    cfg = load_config(args.env, region=args.region, role_arn=args.role_arn, bucket=args.bucket,
                      problem_type=args.problem_type, label=args.label, tuning=args.tuning)
    if cfg.region:
        return cfg
    import boto3  # boto3 reads AWS_REGION / AWS_DEFAULT_REGION / the profile's region; no network

    return cfg.replace(region=boto3.Session().region_name or DEFAULT_REGION)


def _compiled(args, cfg=None):
    from pipelines.compiler import compile_pipeline

    cfg = cfg or _config(args)
    module = importlib.import_module(args.definition)
    return compile_pipeline(module.definition(cfg), cfg)


def parse_overrides(parameters: dict[str, dsl.Parameter], pairs: list[str]) -> dict:
    """`Name=Value` pairs checked against the pipeline's parameters before any call is made."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"-p {pair!r}: write parameters as Name=Value")
        if name not in parameters:
            raise UserError(f"-p {pair!r}: the pipeline has no parameter {name!r}; "
                            f"its parameters are {', '.join(parameters)}")
        out[name] = parameters[name].coerce(value)
    return out


def _clients(cfg):
    import boto3

    session = boto3.Session(region_name=cfg.region)
    return session.client("sagemaker"), session.client("s3")


# --- commands ---------------------------------------------------------------------------------


def cmd_compile(args):
    compiled = _compiled(args)
    if args.output:
        _write_atomic(Path(args.output), compiled.definition)
        print(f"wrote {args.output} ({len(compiled.definition)} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(compiled.definition)


def cmd_diff(args):
    from pipelines import cloud

    cfg = _config(args)
    compiled = _compiled(args, cfg)
    sm, _ = _clients(cfg)
    lines = cloud.diff(cloud.deployed_definition(sm, compiled.name), compiled.definition)
    print("\n".join(lines) if lines else f"{compiled.name}: deployed definition is up to date")
    return 1 if lines else 0


def cmd_upsert(args):
    from pipelines import cloud

    cfg = _config(args)
    compiled = _compiled(args, cfg)
    sm, s3 = _clients(cfg)
    print(cloud.upsert(sm, s3, compiled, cfg.role_arn))


def cmd_start(args):
    from pipelines import cloud

    cfg = _config(args)
    compiled = _compiled(args, cfg)
    overrides = parse_overrides(compiled.parameters, args.parameter)
    sm, s3 = _clients(cfg)
    if args.input_data:
        overrides["InputData"] = stage_input(args.input_data, cfg, lambda uri, data: cloud.upload_assets(
            s3, {uri: data}))
    arn = cloud.start(sm, compiled, overrides)
    print(arn)
    if not args.wait:
        return 0
    execution = cloud.wait(sm, arn, timeout=args.timeout, poll=args.poll,
                           on_step=lambda s: print(f"  {s.get('StepName')}: {s.get('StepStatus')}", file=sys.stderr))
    status = execution["PipelineExecutionStatus"]
    print(f"{status}{': ' + execution['FailureReason'] if execution.get('FailureReason') else ''}", file=sys.stderr)
    return 0 if status == "Succeeded" else 1


def cmd_run(args):
    if args.local:
        from pipelines.local.cli import run_local

        return run_local(args)
    if args.resume:
        raise UserError("--resume works with --local; in SageMaker retry the execution from Studio")
    parse_overrides(_compiled(args).parameters, args.parameter)  # refuse a bad -p before upserting anything
    cmd_upsert(args)
    args.wait = True
    return cmd_start(args)


def cmd_models(args):
    from pipelines.local.cli import list_models

    if not args.local:
        raise UserError("models lists the local registry: add --local")
    return list_models(args)


def cmd_download(args):
    from pipelines.data import download_uci

    print(download_uci(Path(args.dest)))


def stage_input(path_or_uri: str, cfg, put) -> str:
    """An s3:// URI as it is; a local file is put under the data prefix, addressed by its content
    (so a changed file never hides behind a cached step, and an unchanged one is uploaded once)."""
    if path_or_uri.startswith("s3://"):
        return path_or_uri
    path = Path(path_or_uri)
    if not path.is_file():
        raise UserError(f"--input-data {path_or_uri}: no such file (give a CSV/Parquet file or an s3:// URI)")
    data = path.read_bytes()
    uri = f"{cfg.s3_root}/data/{hashlib.sha256(data).hexdigest()}/{path.name}"
    put(uri, data)
    return uri


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# --- parser -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deploy.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("configuration (pipelines/config.toml, overridden by these flags)")
    g.add_argument("--env", default="dev", help="environment table of config.toml (default: dev)")
    g.add_argument("--region", help="AWS region (default: config, then AWS_REGION / profile)")
    g.add_argument("--role-arn", help="SageMaker execution role ARN")
    g.add_argument("--bucket", help="S3 bucket for code, data and outputs")
    g.add_argument("--problem-type", choices=PROBLEM_TYPES, help="binary, multiclass or regression")
    g.add_argument("--label", help="name of the label column")
    g.add_argument("--tuning", action=argparse.BooleanOptionalAction, default=None,
                   help="tune hyperparameters (TuningStep) or train once (TrainingStep)")
    g.add_argument("--definition", default=DEFAULT_DEFINITION, help="module with definition(cfg)")

    running = argparse.ArgumentParser(add_help=False)
    running.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                         help="override a pipeline parameter (repeatable)")
    running.add_argument("--input-data", metavar="PATH|s3://...", help="data to run on (sets InputData)")
    running.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait (default 6 h)")
    running.add_argument("--poll", type=float, default=15.0, help=argparse.SUPPRESS)

    def add(name, func, help, parents=(common,)):
        p = sub.add_parser(name, parents=list(parents), help=help, description=help)
        p.set_defaults(command=func)
        return p

    add("compile", cmd_compile, "print the pipeline definition JSON").add_argument(
        "--output", "-o", help="write it to FILE instead of stdout")
    add("diff", cmd_diff, "compare the compiled definition with the deployed one (exit 1 when they differ)")
    add("upsert", cmd_upsert, "upload code and create or update the pipeline; prints its ARN")
    start = add("start", cmd_start, "start an execution; prints its ARN", (common, running))
    start.add_argument("--wait", action="store_true", help="follow the execution; exit 1 unless it succeeds")
    run = add("run", cmd_run, "upsert + start + wait; with --local, run offline instead", (common, running))
    run.add_argument("--local", action="store_true", help="run with the local runner: no AWS, no Docker")
    run.add_argument("--json", action="store_true", help="print one JSON summary instead of progress")
    run.add_argument("--resume", metavar="EXECUTION_ID", help="re-run a failed local execution from its failed step")
    run.add_argument("--home", help="local runner home (default: $PIPELINES_LOCAL_HOME or ./.local-pipelines)")
    run.add_argument("--max-parallel-steps", type=int, default=4, help="local: steps running at once")
    models = add("models", cmd_models, "list model package groups and versions")
    models.add_argument("--local", action="store_true", help="the local registry")
    models.add_argument("--home", help="local runner home")
    add("download", cmd_download, "download the public UCI Online Shoppers data set", ()).add_argument(
        "--dest", default="data", help="folder to write online_shoppers_intention.csv into")
    return parser
