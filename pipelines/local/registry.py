"""A local model registry: SageMaker's model package groups and versions, in SQLite.

RegisterModel steps of local executions land here, so the approve-then-deploy
flow can be rehearsed offline. A version can carry a model card (Markdown),
returned as DescribeModelPackage's `ModelCard`. Every write is one `BEGIN IMMEDIATE`
transaction, so no reader ever sees half a version and two processes
registering at once get distinct version numbers.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Iterator

from pipelines.local.records import now
from pipelines.packages import group_and_version

STATUSES = ("PendingManualApproval", "Approved", "Rejected")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_package_groups (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_packages (
    group_name TEXT NOT NULL REFERENCES model_package_groups(name),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    metrics TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    execution_id TEXT,
    model_card TEXT,
    PRIMARY KEY (group_name, version)
);
"""
# Columns added after the first release: (name, SQL type), added to older databases on open.
_ADDED_COLUMNS = (("model_card", "TEXT"),)


class Registry:
    def __init__(self, path: Path | str, *, region: str = "us-east-1", account: str = "000000000000"):
        self.path = Path(path)
        self.region = region
        self.account = account
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)
        self._migrate()

    @classmethod
    def of(cls, home) -> Registry:
        """The registry of a local home (a LocalHome), its ARNs in the home's region and account."""
        return cls(home.registry, region=home.region, account=home.account)

    def register(self, request: dict, *, execution_id: str | None, store=None) -> dict:
        """Add the next version of `request["ModelPackageGroupName"]` (a
        CreateModelPackage request); return it DescribeModelPackage-shaped.

        The metrics files the request points at are read from `store` when they
        can be, so the registry keeps the figures even after the run is cleaned.
        """
        group = request.get("ModelPackageGroupName")
        if not group:
            raise ValueError("RegisterModel needs a ModelPackageGroupName")
        status = _check_status(request.get("ModelApprovalStatus", "PendingManualApproval"))
        metrics = json.dumps(_read_metrics(request.get("ModelMetrics", {}), store))
        created = now()
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO model_package_groups VALUES (?, ?)", (group, created))
            (version,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages WHERE group_name = ?", (group,)
            ).fetchone()
            db.execute(
                "INSERT INTO model_packages (group_name, version, status, request, metrics, created, modified,"
                " execution_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (group, version, status, json.dumps(request), metrics, created, created, execution_id),
            )
        return self.get(group, version)

    def list_groups(self) -> list[dict]:
        rows = self._query(
            "SELECT g.name, g.created, COUNT(p.version) FROM model_package_groups g"
            " LEFT JOIN model_packages p ON p.group_name = g.name GROUP BY g.name ORDER BY g.name"
        )
        return [
            {
                "ModelPackageGroupName": name,
                "ModelPackageGroupArn": self._arn("model-package-group", name),
                "CreationTime": created,
                "Versions": count,
            }
            for name, created, count in rows
        ]

    def list_versions(self, group: str) -> list[dict]:
        rows = self._query(f"{_SELECT} WHERE group_name = ? ORDER BY version", (group,))
        return [self._describe(row) for row in rows]

    def get(self, group: str, version: int) -> dict:
        rows = self._query(f"{_SELECT} WHERE group_name = ? AND version = ?", (group, version))
        if not rows:
            raise LookupError(f"no model package {group}/{version} in {self.path}")
        return self._describe(rows[0])

    def latest(self, group: str, status: str | None = None) -> dict | None:
        """The newest version of `group` (with `status`, if given), or None."""
        where, args = ("AND status = ?", (group, _check_status(status))) if status else ("", (group,))
        rows = self._query(f"{_SELECT} WHERE group_name = ? {where} ORDER BY version DESC LIMIT 1", args)
        return self._describe(rows[0]) if rows else None

    def model_containers(self, request: dict) -> dict:
        """A CreateModel request with each container that names a model package version
        (`ModelPackageName`, its ARN) given that version's inference container: its image, model
        data and environment (the container's own Environment on top), as SageMaker creates a
        model from a package. LookupError names a version this registry does not hold."""
        def resolve(container: dict) -> dict:
            name = container.get("ModelPackageName")
            if not isinstance(name, str):
                return container
            try:
                group, version = group_and_version(name)
            except ValueError as exc:
                raise LookupError(f"ModelPackageName: {exc}; only a version is resolved locally") from None
            package = self.get(group, version)
            inference = ((package.get("InferenceSpecification") or {}).get("Containers") or [{}])[0]
            environment = {**(inference.get("Environment") or {}), **(container.get("Environment") or {})}
            return {**{k: inference[k] for k in ("Image", "ModelDataUrl") if k in inference}, **container,
                    **({"Environment": environment} if environment else {})}

        resolved = dict(request)
        if request.get("PrimaryContainer"):
            resolved["PrimaryContainer"] = resolve(request["PrimaryContainer"])
        if request.get("Containers"):
            resolved["Containers"] = [resolve(c) for c in request["Containers"]]
        return resolved

    def set_status(self, group: str, version: int, status: str) -> dict:
        return self._set(group, version, "status", _check_status(status))

    def set_model_card(self, group: str, version: int, content: str, status: str = "Draft") -> dict:
        """Attach a model card (Markdown) to a version, replacing any earlier one."""
        return self._set(group, version, "model_card",
                         json.dumps({"ModelCardContent": content, "ModelCardStatus": status}))

    def _set(self, group: str, version: int, column: str, value: str) -> dict:
        """Set one column of a version (a name from this class, never from input); the updated version."""
        with self._transaction() as db:
            changed = db.execute(
                f"UPDATE model_packages SET {column} = ?, modified = ? WHERE group_name = ? AND version = ?",
                (value, now(), group, version),
            ).rowcount
        if not changed:
            raise LookupError(f"no model package {group}/{version} in {self.path}")
        return self.get(group, version)

    def _migrate(self) -> None:
        """Add the columns a database made by an older version lacks. The check is repeated
        inside the write transaction, so two processes opening it at once add each column once."""
        def missing(db) -> list[tuple[str, str]]:
            have = {row[1] for row in db.execute("PRAGMA table_info(model_packages)")}
            return [(name, sql_type) for name, sql_type in _ADDED_COLUMNS if name not in have]

        with closing(self._connect()) as db:
            if not missing(db):
                return
        with self._transaction() as db:
            for name, sql_type in missing(db):
                db.execute(f"ALTER TABLE model_packages ADD COLUMN {name} {sql_type}")

    def _describe(self, row: tuple) -> dict:
        group, version, status, request, metrics, created, modified, execution_id, model_card = row
        card = {"ModelCard": json.loads(model_card)} if model_card else {}
        return {
            **json.loads(request),
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": self._arn("model-package", f"{group}/{version}"),
            "ModelApprovalStatus": status,
            # A versioned package is named after its group, as DescribeModelPackage names it.
            "ModelPackageName": group,
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": False,
            "CreationTime": created,
            "LastModifiedTime": modified,
            "PipelineExecutionId": execution_id,
            "Metrics": json.loads(metrics),
            **card,
        }

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name}"

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with closing(self._connect()) as db:
            return db.execute(sql, args).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are exactly the explicit BEGIN/COMMIT above.
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)


_SELECT = ("SELECT group_name, version, status, request, metrics, created, modified, execution_id, model_card"
           " FROM model_packages")


def _read_metrics(model_metrics: dict, store) -> dict[str, Any]:
    """`{"ModelQuality.Statistics": <JSON content>}` for each metrics file `store` can read."""
    content = {}
    for kind, sources in model_metrics.items():
        for name, source in (sources or {}).items():
            uri = source.get("S3Uri") if isinstance(source, dict) else None
            if uri and store is not None:
                try:
                    content[f"{kind}.{name}"] = json.loads(store.get_bytes(uri))
                except (OSError, ValueError):
                    continue  # unreachable or not JSON: the URI stays in the request
    return content


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"model approval status must be one of {', '.join(STATUSES)}, got {status!r}")
    return status


