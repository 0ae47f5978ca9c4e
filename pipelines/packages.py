"""Naming model package versions and what is made from them, the same in SageMaker and locally.

A version is named by a reference: its ARN, its number in a group (``3``, or ``v3`` as `deploy.py
models` prints it), ``latest`` or ``latest-approved``. Models, endpoint configs and transform jobs
made from a version get unique names from `unique_name` + `stamp`. Standard library only, so both
targets (`pipelines.endpoints`, `pipelines.local.endpoint`) import it without importing each other.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

LATEST, LATEST_APPROVED = "latest", "latest-approved"
APPROVED = "Approved"
_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+$")


def parse_reference(ref: str) -> str | int:
    """``latest``, ``latest-approved``, a version number (int) or a model package ARN (str);
    ValueError for anything else."""
    ref = str(ref).strip()
    if ref in (LATEST, LATEST_APPROVED) or _PACKAGE_ARN.match(ref):
        return ref
    if ref.isdigit() and int(ref) > 0:
        return int(ref)
    if ref.lower().startswith("v") and ref[1:].isdigit() and int(ref[1:]) > 0:
        return int(ref[1:])  # as `models` prints it: v3
    raise ValueError(f"{ref!r} names no model package: give a version number (3), {LATEST}, {LATEST_APPROVED} "
                     f"or a model package ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)")


def group_and_version(arn: str) -> tuple[str, int]:
    """The group and version number a model package version's ARN names; ValueError for anything else."""
    if not _PACKAGE_ARN.match(arn):
        raise ValueError(f"{arn!r} is not a model package version's ARN "
                         f"(arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)")
    group, _, version = arn.split(":model-package/", 1)[1].rpartition("/")
    return group, int(version)


def stamp() -> str:
    """A UTC timestamp to the millisecond: names of models, configs and jobs never repeat."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"


def unique_name(stem: str, suffix: str, limit: int = 63) -> str:
    """`<stem>-<suffix>` as a valid SageMaker name ([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})."""
    stem = re.sub(r"[^A-Za-z0-9-]+", "-", stem).strip("-")[: limit - len(suffix) - 1].rstrip("-")
    return f"{stem}-{suffix}" if stem else suffix
