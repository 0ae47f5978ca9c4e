"""The local target: the local runner and one home (`pipelines.local`): its store stands in for S3,
its records for SageMaker's executions, its SQLite registry for the model registry, its endpoint
records and server for endpoints. Every hint it gives carries `--local --home DIR`."""
from __future__ import annotations

from functools import cached_property
from typing import Iterator

from pipelines import history, packages
from pipelines.inputs import stage_input
from pipelines.targets import RunRequest, Target, UserError


class LocalTarget(Target):
    name = "local"

    def __init__(self, home, *, home_given: bool = False):
        self.home = home
        self.flags = ("--local", "--home", str(home.root)) if home_given else ("--local",)

    @cached_property
    def store(self):
        from pipelines.local import open_store

        return open_store(None, root=self.home.s3)

    @cached_property
    def registry(self):
        from pipelines.local import Registry

        return Registry.of(self.home)

    # -- code and data ------------------------------------------------------------------------------

    def stage_input(self, path_or_uri: str, root: str, *, flag: str = "--input-data") -> str:
        if path_or_uri.startswith("s3://") and not self.store.list(path_or_uri):
            raise UserError(f"{flag} {path_or_uri}: no objects there in the local store {self.home.s3}")
        return stage_input(path_or_uri, root, self.store.put_file, flag=flag)

    def exists(self, uri: str) -> bool:
        return self.store.exists(uri)

    def put_file(self, uri: str, path) -> None:
        self.store.put_file(uri, path)

    def read(self, uri: str) -> bytes | None:
        return self.store.get_bytes(uri) if self.store.exists(uri) else None

    def upsert(self, name, definition, assets, *, role_arn, display_name=None, description=None, tags=None) -> str:
        """The code bundles into the local store: the local runner runs the definition it is given, so
        there is no pipeline object to create."""
        for uri, data in assets.items():
            if not self.store.exists(uri):
                self.store.put_bytes(uri, data)
        return ""

    # -- executions ---------------------------------------------------------------------------------

    def start(self, request: RunRequest) -> str:
        """Run the execution to its end in this process (Ctrl-C, SIGTERM and SIGHUP stop it, recorded
        Stopped), then write its report; its id."""
        from pipelines.local import run_pipeline
        from pipelines.local.staging import StagingError, stage
        from pipelines.report import publish_local_run

        if bool(request.source) != bool(request.steps):
            raise UserError("--from EXECUTION and --steps STEP[,STEP] go together: which steps to run again, "
                            "reusing which execution's other outputs")
        try:
            staged = stage(self.store, list(request.stage))
        except StagingError as e:
            raise UserError(str(e)) from None
        for uri in staged:
            _say(request, f"staged {uri}")
        options = dict(home=self.home, store=self.store, max_parallel_steps=request.max_parallel_steps,
                       on_event=request.on_event, job_env=request.job_env, keep_trials=request.keep_trials)
        if request.resume:
            record = run_pipeline(None, resume=request.resume, **options)
        else:
            self.upsert(request.pipeline_name, request.definition, request.assets, role_arn=None)
            record = run_pipeline(request.definition, pipeline_name=request.pipeline_name,
                                  parameters=request.parameters, source=request.source,
                                  selected=list(request.steps), origin=request.origin, **options)
        record = publish_local_run(record, home=self.home, store=self.store, description=request.description)
        return record["execution_id"]

    def wait(self, execution, *, timeout, poll, on_event) -> dict:
        return self.summary(execution)  # start ran it to its end

    def summary(self, execution: str) -> dict:
        return history.summary(self.view(execution, None))

    def views(self, pipeline_name, last) -> list[dict]:
        return [self._view(self._settled(record)) for record in self.home.executions()[::-1][:last]]

    def view(self, execution, pipeline_name) -> dict:
        return self._view(self.record(execution))

    def _view(self, record: dict) -> dict:
        from pipelines.report import read_definition

        return history.local_view(record, read_definition(self.home.runs / record["execution_id"]))

    def record(self, execution: str) -> dict:
        """The record of a local execution, `latest` being the newest."""
        if execution == "latest":
            records = self.home.executions()
            if not records:
                raise UserError(f"no local executions under {self.home.runs} yet: run `{self.hint('run')}`")
            return self._settled(records[-1])
        try:
            return self._settled(self.home.execution(execution))
        except FileNotFoundError as e:
            raise UserError(f"{e}; `{self.hint('runs')}` lists them") from None

    def _settled(self, record: dict) -> dict:
        """The record, an `Executing` one whose runner died recorded as such (`records.settle`)."""
        from pipelines.local.records import settle

        return settle(self.home.runs / record["execution_id"], record)

    def logs(self, execution, step, *, follow, pipeline_name) -> Iterator[str]:
        from pipelines.local.logs import chosen_logs, lines

        record = self.record(execution)
        try:
            chosen_logs(record, step)
        except KeyError as e:
            raise UserError(e.args[0]) from None
        yield from lines(self.home, record, step, follow=follow)

    def stop(self, execution: str) -> str:
        from pipelines.local.stopping import request_stop

        record = request_stop(self.home, execution)
        if record["status"] == "Stopped":
            return f"{execution}: Stopped (its runner had already ended)"
        return f"{execution}: asked its runner (pid {record.get('runner_pid')}) to stop it"

    def origin(self, execution: str) -> dict:
        return self.record(execution).get("origin") or {}

    # -- registered models --------------------------------------------------------------------------

    def groups(self, names, last) -> list[dict]:
        known = [g["ModelPackageGroupName"] for g in self.registry.list_groups()]
        return [{"ModelPackageGroupName": name, "Versions": self.registry.list_versions(name)[-last:]}
                for name in known if names is None or name in names]

    def latest_groups(self) -> tuple[list[str], str]:
        from pipelines.report import read_definition

        records = self.home.executions()
        if not records:
            return [], f"no local executions under {self.home.runs} yet"
        latest = records[-1]
        groups = history.registered_groups(read_definition(self.home.runs / latest["execution_id"]))
        return groups, f"the latest run in {self.home.root}, {latest['execution_id']} ({latest['pipeline_name']})"

    def package(self, group, ref, *, approved=False) -> dict:
        try:
            parsed = packages.parse_reference(ref)
        except ValueError as e:
            raise UserError(str(e)) from None
        if isinstance(parsed, int) or parsed.startswith("arn:"):
            group, version = (group, parsed) if isinstance(parsed, int) else packages.group_and_version(parsed)
            try:
                package = self.registry.get(group, version)
            except LookupError:
                raise UserError(f"model package group {group!r} has no version {version} in the local registry "
                                f"{self.registry.path} (list them with `{self.hint('models', '--group', group)}`)") \
                    from None
        else:
            wanted = packages.APPROVED if parsed == packages.LATEST_APPROVED else None
            package = self.registry.latest(group, wanted)
            if package is None:
                hint = self.hint("approve", "VERSION", "--group", group) if wanted else self.hint("run")
                raise UserError(f"model package group {group!r} has no {'approved ' if wanted else ''}version in "
                                f"the local registry {self.registry.path}: "
                                f"{'approve one with' if wanted else 'register one with'} `{hint}`")
        if approved and package["ModelApprovalStatus"] != packages.APPROVED:
            raise UserError(f"{package['ModelPackageArn']} is {package['ModelApprovalStatus']}, not Approved: approve "
                            f"it first (`{self.hint('approve', str(package['ModelPackageVersion']), '--group', package['ModelPackageGroupName'])}`)")
        return package

    def set_approval(self, group, ref, status, description=None) -> dict:
        package = self.package(group, ref)
        return self.registry.set_status(package["ModelPackageGroupName"], package["ModelPackageVersion"], status)

    def deploy(self, package, *, endpoint_name, instance_type, instance_count, role_arn, tags, wait):
        from pipelines.local import endpoint

        result = endpoint.deploy(self.home, package, endpoint_name=endpoint_name, instance_type=instance_type)
        return result, f"serve it with: {self.hint('serve', '--endpoint-name', endpoint_name)}"

    def prune(self, *, keep, older_than, dry_run) -> dict:
        from pipelines.local import prune

        try:
            age = prune.parse_age(older_than) if older_than else None
        except ValueError as e:
            raise UserError(str(e)) from None
        if keep < 0:
            raise UserError(f"--keep {keep}: give 0 or more executions to keep")
        plan = prune.plan(self.home, self.store, keep=keep, older_than=age)
        freed = 0 if dry_run else prune.apply(plan)
        return {"items": [(i.what, str(i.path), i.size, i.execution) for i in plan.items], "kept": plan.kept,
                "freed": freed, "size": plan.size}

    def endpoint_package(self, endpoint_name: str) -> str:
        from pipelines.local import endpoint

        record = endpoint.endpoint_record(self.home, endpoint_name)
        if record is None:
            raise UserError(f"no local endpoint {endpoint_name}: create it with "
                            f"`{self.hint('deploy-endpoint', '--endpoint-name', endpoint_name)}`")
        return record["ModelPackageArn"]

    def serve(self, package, *, endpoint_name, host, port, max_payload_mb, say) -> None:
        from pipelines.local import endpoint

        endpoint.serve_package(self.home, package, host=host, port=port, max_payload_mb=max_payload_mb, announce=say)

    def predict(self, body, *, endpoint_name, url, content_type, accept) -> bytes:
        from pipelines.local import endpoint

        return endpoint.post(url, body, content_type=content_type, accept=accept, start=self.hint("serve"))

    def batch_transform(self, package, *, input_path, output, root, instance_type, role_arn, tags, wait, say) -> dict:
        from pipelines.local import endpoint

        input_uri = self.stage_input(input_path, f"{root}/scoring", flag="--input")
        job = endpoint.batch_transform(self.home, self.store, package, input_uri=input_uri, output_uri=output,
                                       output_root=f"{root}/transform", instance_type=instance_type)
        return {**job, "Output": str(self.store.path(job["TransformOutput"]["S3OutputPath"]))}


def _say(request: RunRequest, line: str) -> None:
    if request.on_event:
        request.on_event({"event": "staged", "time": "", "line": line})

