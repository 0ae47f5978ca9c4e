"""Which SageMaker SDK is installed, told from package metadata, and its adapter.

v2 and v3 cannot share an environment, so exactly one is found. Detection reads metadata
only, so that a test can tell which oracle it compares with before importing either SDK.
"""
from __future__ import annotations

import functools
import importlib
import importlib.metadata


INSTALL_HINT = "pip install -e '.[sdk-v2]' or pip install -e '.[sdk-v3]'"
# The packages that make each major, in the order their versions are reported.
PACKAGES = {2: ("sagemaker",), 3: ("sagemaker-mlops", "sagemaker-train", "sagemaker-serve", "sagemaker-core")}


class SdkError(RuntimeError):
    """No usable SageMaker SDK in this environment; the message says what to install."""


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=None)
def installed() -> tuple[int, str]:
    """(major, "package version, ...") of the installed SDK, or SdkError saying what to install.

    v3 is told by `sagemaker-mlops`, where its pipeline steps live; the `sagemaker` 3.x
    meta-package is optional, so a lighter install of the parts compile needs counts too.
    """
    meta = _version("sagemaker")
    if _version("sagemaker-mlops"):
        if meta and int(meta.split(".")[0]) < 3:
            raise SdkError(f"sagemaker {meta} (SDK v2) and sagemaker-mlops (SDK v3) are both installed; "
                           f"they cannot share an environment: make a fresh one and {INSTALL_HINT}")
        major = 3
    elif meta and meta.split(".")[0] == "2":
        major = 2
    elif meta and meta.split(".")[0] == "3":
        raise SdkError(f"sagemaker {meta} is installed without sagemaker-mlops, where SDK v3's pipeline steps "
                       f"live; pip install -e '.[sdk-v3]' (sagemaker>=3.27)")
    else:
        found = f"sagemaker {meta} is installed, which this project does not support; " if meta else ""
        raise SdkError(f"{found}the SDK oracle needs the SageMaker Python SDK v2 or v3: {INSTALL_HINT}")
    return major, ", ".join(f"{p} {_version(p)}" for p in PACKAGES[major] if _version(p))


@functools.lru_cache(maxsize=None)
def load():
    """The adapter of the installed SDK (`v2.Sdk` or `v3.Sdk`), imported once and quietly."""
    major, _ = installed()
    return importlib.import_module(f"sdk_oracle.v{major}").Sdk()
