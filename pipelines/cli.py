"""The command line behind deploy.py: parse flags, call pipelines.*, print results.

Every command compiles first, so what is diffed, upserted, started or run
locally is always the JSON of the current definition.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from datetime import datetime
from pathlib import Path

from pipelines import dsl
from pipelines.bundles import file_asset
from pipelines.config import PROBLEM_TYPES, ConfigError, load_config
from pipelines.files import write_atomically

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
                      problem_type=args.problem_type, label=args.label, tuning=args.tuning,
                      batch_transform=args.batch_transform)
    if cfg.region:
        return cfg
    import boto3  # boto3 reads AWS_REGION / AWS_DEFAULT_REGION / the profile's region; no network

    return cfg.replace(region=boto3.Session().region_name or DEFAULT_REGION)


def _compiled(args, cfg=None, cache_dir=None):
    from pipelines.compiler import compile_pipeline

    cfg = cfg or _config(args)
    module = importlib.import_module(args.definition)
    return compile_pipeline(module.definition(cfg), cfg, cache_dir=cache_dir)


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
        write_atomically(args.output, compiled.definition)
        print(f"wrote {args.output} ({len(compiled.definition)} bytes)", file=sys.stderr)
    else:
        sys.stdout.write(compiled.definition)


def cmd_diff(args):
    from pipelines import cloud

    cfg = _config(args)
    sm, _ = _clients(cfg)
    current = cloud.deployed(sm, cfg.pipeline_name) or {}
    if not cfg.role_arn and current.get("RoleArn"):  # compare like with like, not with the placeholder role
        cfg = cfg.replace(role_arn=current["RoleArn"])
    compiled = _compiled(args, cfg)
    lines = cloud.diff(current.get("PipelineDefinition"), compiled.definition)
    print("\n".join(lines) if lines else f"{compiled.name}: deployed definition is up to date")
    return 1 if lines else 0


def cmd_upsert(args):
    cfg = _config(args)
    _upsert(cfg, _compiled(args, cfg), *_clients(cfg))


def _upsert(cfg, compiled, sm, s3) -> None:
    from pipelines import cloud

    print(cloud.upsert(sm, s3, compiled, cfg.role_arn))


def cmd_start(args):
    cfg = _config(args)
    compiled = _compiled(args, cfg)
    overrides = parse_overrides(compiled.parameters, args.parameter)
    return _start(args, cfg, compiled, overrides, *_clients(cfg))


def _start(args, cfg, compiled, overrides: dict, sm, s3) -> int:
    from pipelines import cloud

    if args.input_data:
        overrides["InputData"] = stage_input(args.input_data, cfg, lambda uri, data: cloud.upload_assets(
            s3, {uri: data}))
    arn = cloud.start(sm, compiled, scoring_follows_input(compiled.parameters, overrides))
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
    cfg = _config(args)
    compiled = _compiled(args, cfg)
    overrides = parse_overrides(compiled.parameters, args.parameter)  # a bad -p is refused before the upsert
    clients = _clients(cfg)
    _upsert(cfg, compiled, *clients)
    args.wait = True
    return _start(args, cfg, compiled, overrides, *clients)


def cmd_models(args):
    if args.local:
        from pipelines.local.registry import Registry

        registry = Registry.of(_home(args))
        groups = [{"ModelPackageGroupName": g["ModelPackageGroupName"],
                   "Versions": registry.list_versions(g["ModelPackageGroupName"])} for g in registry.list_groups()]
        empty = "no model packages yet: run `python deploy.py run --local`"
    else:
        from pipelines import endpoints

        sm, s3 = _clients(_config(args))
        groups = endpoints.list_models(sm, s3, last=args.last)
        empty = "no model package groups in SageMaker yet"
    print("\n".join(format_models(groups)) if groups else empty)


def format_models(groups: list[dict]) -> list[str]:
    """The listing `deploy.py models` prints, local or SageMaker: a group per line, then its versions."""
    lines = []
    for group in groups:
        lines.append(group["ModelPackageGroupName"])
        for v in group["Versions"]:
            created = v.get("CreationTime")
            created = created.isoformat(timespec="seconds") if isinstance(created, datetime) else created or ""
            lines.append(f"  v{v.get('ModelPackageVersion', '?'):<3} {v.get('ModelApprovalStatus', ''):<22} "
                         f"{created}  {_key_metrics(v)}")
    return lines


def _key_metrics(version: dict) -> str:
    """The scalar metrics of the version's model-quality report, e.g. roc_auc=0.93."""
    report = (version.get("Metrics") or {}).get("ModelQuality.Statistics") or {}
    flat = {k: v["value"] for section in report.values() if isinstance(section, dict)
            for k, v in section.items() if isinstance(v, dict) and isinstance(v.get("value"), (int, float))}
    return "  ".join(f"{k}={v:.4f}" for k, v in list(flat.items())[:4])


# --- from a registered model to predictions: pipelines.endpoints (SageMaker), pipelines.local.endpoint (--local)


def _home(args):
    from pipelines.local import LocalHome

    return LocalHome(Path(args.home)) if args.home else LocalHome.default()


def cmd_approve(args, status="Approved"):
    cfg = _config(args)
    if args.local:
        from pipelines.local import endpoint as local

        package = local.set_approval(_home(args), cfg.model_package_group, args.version, status)
    else:
        from pipelines import endpoints

        package = endpoints.set_approval(_clients(cfg)[0], cfg.model_package_group, args.version, status,
                                         args.description)
    print(f"{package['ModelPackageArn']}: {package['ModelApprovalStatus']}")


def cmd_reject(args):
    return cmd_approve(args, status="Rejected")


def cmd_deploy_endpoint(args):
    cfg = _config(args)
    name = args.endpoint_name or f"{cfg.pipeline_name}-{cfg.env}"
    instance_type = args.instance_type or cfg.inference_instance_type
    if args.local:
        from pipelines.local import endpoint as local

        home = _home(args)
        package = local.approved_package(home, cfg.model_package_group, args.model_package)
        result = local.deploy(home, package, endpoint_name=name, instance_type=instance_type)
        hint = f"serve it with: python deploy.py serve --local --endpoint-name {name}"
    else:
        from pipelines import endpoints

        sm, _ = _clients(cfg)
        package = endpoints.approved_package(sm, cfg.model_package_group, args.model_package)
        result = endpoints.deploy_endpoint(sm, package, endpoint_name=name, role_arn=cfg.role_arn,
                                           instance_type=instance_type, instance_count=args.instance_count,
                                           tags=cfg.all_tags())
        hint = endpoints.wait_in_service(sm, name)["EndpointStatus"] if args.wait else \
            "SageMaker is bringing it into service (add --wait to follow)"
    print(f"{result['Action']} endpoint {name}: config {result['EndpointConfigName']} serves "
          f"{result['ModelPackageArn']}")
    print(hint, file=sys.stderr)


def cmd_serve(args):
    if not args.local:
        raise UserError("serve runs a local endpoint: add --local (in SageMaker, use deploy-endpoint)")
    from pipelines.local import endpoint as local

    cfg, home = _config(args), _home(args)
    ref = args.model_package
    if args.endpoint_name:
        record = local.endpoint_record(home, args.endpoint_name)
        if record is None:
            raise UserError(f"no local endpoint {args.endpoint_name}: create it with "
                            f"`python deploy.py deploy-endpoint --local --endpoint-name {args.endpoint_name}`")
        ref = ref or record["ModelPackageArn"]
    package = local.resolve(local.Registry.of(home), cfg.model_package_group, ref or "latest-approved")
    local.serve_package(home, package, host=args.host, port=args.port, max_payload_mb=args.max_payload_mb,
                        announce=lambda line: print(line, file=sys.stderr, flush=True))


def cmd_predict(args):
    body = sys.stdin.buffer.read()
    if not body.strip():
        raise UserError("predict reads the rows to score from standard input: deploy.py predict ... < rows.csv")
    if args.local:
        from pipelines.local import endpoint as local

        output = local.post(args.url, body, content_type=args.content_type, accept=args.accept)
    else:
        import boto3

        from pipelines import endpoints

        if not args.endpoint:
            raise UserError("predict needs --endpoint NAME (or --local for the local server)")
        runtime = boto3.Session(region_name=_config(args).region).client("sagemaker-runtime")
        output = endpoints.invoke(runtime, args.endpoint, body, content_type=args.content_type, accept=args.accept)
    sys.stdout.write(output.decode("utf-8"))


def cmd_batch_transform(args):
    cfg = _config(args)
    instance_type = args.instance_type or cfg.inference_instance_type
    if args.local:
        from pipelines.local import endpoint as local

        home = _home(args)
        store = local.local_store(home)
        package = local.approved_package(home, cfg.model_package_group, args.model_package)
        job = local.batch_transform(home, store, package, input_path=args.input, output_uri=args.output,
                                    data_root=cfg.s3_root, instance_type=instance_type)
        output = job["TransformOutput"]["S3OutputPath"]
        print(f"{job['TransformJobName']}: {job['TransformJobStatus']}, output {output}", file=sys.stderr)
        print(store.path(output))
        return 0
    from pipelines import cloud, endpoints

    sm, s3 = _clients(cfg)
    package = endpoints.approved_package(sm, cfg.model_package_group, args.model_package)
    if not args.input.startswith("s3://") and not Path(args.input).is_file():
        raise UserError(f"--input {args.input}: give an s3:// URI (a file or a prefix) or a local file to upload")
    input_uri = stage_input(args.input, cfg, lambda uri, data: cloud.upload_assets(s3, {uri: data}))
    request = endpoints.batch_transform(sm, package, input_uri=input_uri, output_uri=args.output,
                                        output_root=f"{cfg.s3_root}/transform", role_arn=cfg.role_arn,
                                        instance_type=instance_type, tags=cfg.all_tags())
    print(f"transform job {request['TransformJobName']} started", file=sys.stderr)
    if args.wait:
        endpoints.wait_transform(sm, request["TransformJobName"])
    print(request["TransformOutput"]["S3OutputPath"])


def cmd_download(args):
    from pipelines.data import download_uci

    print(download_uci(Path(args.dest)))


def cmd_report(args):
    """The HTML report of a local run (succeeded or not), written again from its records."""
    from pipelines.local import open_store
    from pipelines.report import read_definition, render_report

    home = _home(args)
    try:
        record = home.execution(args.execution_id)
    except FileNotFoundError as e:
        raise UserError(f"{e}; list runs under {home.runs}") from None
    run_dir = home.runs / args.execution_id
    definition = read_definition(run_dir)
    out = Path(args.output) if args.output else run_dir / "report.html"
    print(render_report(record, definition, open_store(None, root=home.s3), out_path=out))


def _report_arguments(p):
    p.add_argument("execution_id", metavar="EXECUTION_ID", help="a local execution (see runs/ under the home)")
    p.add_argument("--home", help="local runner home (default: $PIPELINES_LOCAL_HOME or ./.local-pipelines)")
    p.add_argument("--output", "-o", metavar="FILE", help="default: runs/<EXECUTION_ID>/report.html in the home")


def scoring_follows_input(parameters: dict, overrides: dict) -> dict:
    """ScoringData (with --batch-transform) defaults to the input data, also when that is overridden."""
    if "ScoringData" in parameters and "InputData" in overrides and "ScoringData" not in overrides:
        overrides["ScoringData"] = overrides["InputData"]
    return overrides


def stage_input(path_or_uri: str, cfg, put) -> str:
    """An s3:// URI as it is; a local file is put under the data prefix, addressed by its content
    (so a changed file never hides behind a cached step, and an unchanged one is uploaded once)."""
    if path_or_uri.startswith("s3://"):
        return path_or_uri
    path = Path(path_or_uri)
    if not path.is_file():
        raise UserError(f"--input-data {path_or_uri}: no such file (give a CSV/Parquet file or an s3:// URI)")
    uri, data = file_asset(path, f"{cfg.s3_root}/data")
    put(uri, data)
    return uri


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
    g.add_argument("--batch-transform", action=argparse.BooleanOptionalAction, default=None,
                   help="after registration, score the ScoringData parameter (CreateModel + TransformStep)")
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
    run.add_argument("--definition-json", metavar="FILE",
                     help="local: run this definition JSON (any SageMaker pipeline) instead of compiling --definition")
    run.add_argument("--stage", action="append", default=[], metavar="s3://BUCKET/KEY=LOCAL_PATH",
                     help="local: put a file or folder into the local store at that URI first (repeatable)")
    run.add_argument("--job-env", choices=("image", "host"),
                     help="local: jobs run in their image's package versions (cached virtualenvs; the default, "
                          "or $PIPELINES_JOB_ENV) or on this Python (host)")
    models = add("models", cmd_models, "list model package groups and versions")
    models.add_argument("--local", action="store_true", help="the local registry")
    models.add_argument("--home", help="local runner home")
    models.add_argument("--last", type=int, default=10, help="SageMaker: the newest N versions per group (default 10)")

    local = argparse.ArgumentParser(add_help=False)
    local.add_argument("--local", action="store_true", help="against the local registry and store instead of SageMaker")
    local.add_argument("--home", help="local runner home (default: $PIPELINES_LOCAL_HOME or ./.local-pipelines)")
    package = argparse.ArgumentParser(add_help=False)
    package.add_argument("--model-package", default="latest-approved", metavar="ARN|VERSION|latest-approved",
                         help="the model package version (default: the newest Approved one)")
    package.add_argument("--instance-type", help="default: inference_instance_type of the config")
    for name, func, verb in (("approve", cmd_approve, "approve"), ("reject", cmd_reject, "reject")):
        p = add(name, func, f"{verb} a version of the model package group", (common, local))
        p.add_argument("version", metavar="VERSION|latest|ARN", help="version number, latest, or a model package ARN")
        p.add_argument("--description", help="SageMaker: the ApprovalDescription")
    deploy = add("deploy-endpoint", cmd_deploy_endpoint, "create the endpoint, or update it to a new endpoint config",
                 (common, local, package))
    deploy.add_argument("--endpoint-name", help="default: <pipeline_name>-<env>")
    deploy.add_argument("--instance-count", type=int, default=1, help="SageMaker: instances behind the endpoint")
    deploy.add_argument("--wait", action="store_true", help="SageMaker: wait until the endpoint is InService")
    serve = add("serve", cmd_serve, "serve a locally registered model over HTTP (SageMaker's /ping and /invocations)",
                (common, local))
    serve.add_argument("--model-package", metavar="ARN|VERSION|latest-approved",
                       help="default: what --endpoint-name serves, else the newest Approved version")
    serve.add_argument("--endpoint-name", help="serve what `deploy-endpoint --local` set this endpoint to")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--max-payload-mb", type=float, default=6,
                       help="larger requests get 413 (default 6, as SageMaker)")
    predict = add("predict", cmd_predict, "score CSV rows from standard input; prints one prediction per row",
                  (common, local))
    predict.add_argument("--endpoint", help="SageMaker endpoint name")
    predict.add_argument("--url", default="http://127.0.0.1:8080", help="--local: the server (default %(default)s)")
    predict.add_argument("--content-type", default="text/csv", help="of the input (default text/csv)")
    predict.add_argument("--accept", default="text/csv", help="of the output (default text/csv)")
    transform = add("batch-transform", cmd_batch_transform, "score a file or prefix with a batch transform job",
                    (common, local, package))
    transform.add_argument("--input", required=True, metavar="PATH|s3://...",
                           help="CSV with a header (a label column is ignored): file, folder (--local) or S3 prefix")
    transform.add_argument("--output", metavar="s3://...", help="default: <bucket>/<prefix>/transform/<job name>")
    transform.add_argument("--wait", action="store_true", help="SageMaker: wait for the job to finish")
    _report_arguments(add("report", cmd_report, "write the HTML report of a local run; prints its path", ()))
    add("download", cmd_download, "download the public UCI Online Shoppers data set", ()).add_argument(
        "--dest", default="data", help="folder to write online_shoppers_intention.csv into")
    return parser
