"""The URIs of SageMaker's framework images: one table, read off the SageMaker Python SDK's
`image_uris` configuration (`image_uri_config/<framework>.json`, SDK 2.257) for the versions
this project offers, and checked against the installed SDK by tests/test_images.py.

    <account>.dkr.ecr.<region>.<domain>/<repository>:<tag>

The account depends on the region and on who publishes the image: AWS's own scikit-learn and
XGBoost images, or its deep learning containers (PyTorch, TensorFlow, Hugging Face). Each table
of accounts holds the regions where every version listed here is published; any other image,
version or region is named by its URI in the definition.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipelines import dsl

_OWN = {  # sagemaker-scikit-learn, sagemaker-xgboost
    "af-south-1": "510948584623", "ap-east-1": "651117190479", "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698", "ap-northeast-3": "867004704886", "ap-south-1": "720646828776",
    "ap-south-2": "628508329040", "ap-southeast-1": "121021644041", "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941", "ap-southeast-4": "106583098589", "ca-central-1": "341280168497",
    "ca-west-1": "190319476487", "cn-north-1": "450853457545", "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770", "eu-central-2": "680994064768", "eu-north-1": "662702820516",
    "eu-south-1": "978288397137", "eu-south-2": "104374241257", "eu-west-1": "141502667606",
    "eu-west-2": "764974769150", "eu-west-3": "659782779980", "il-central-1": "898809789911",
    "me-central-1": "272398656194", "me-south-1": "801668240914", "sa-east-1": "737474898029",
    "us-east-1": "683313688378", "us-east-2": "257758044811", "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902", "us-iso-east-1": "833128469047", "us-isob-east-1": "281123927165",
    "us-isof-east-1": "108575199400", "us-isof-south-1": "124985052026", "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}
_DLC = {  # the deep learning containers
    "af-south-1": "626614931356", "ap-east-1": "871362719292", "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896", "ca-west-1": "204538143572", "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807", "eu-south-1": "692866216735", "il-central-1": "780543022126",
    "me-central-1": "914824155844", "me-south-1": "217643126080", "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    **dict.fromkeys(["ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
                     "ca-central-1", "eu-central-1", "eu-north-1", "eu-west-1", "eu-west-2", "eu-west-3",
                     "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2"], "763104351884"),
}
# The ECR endpoint's domain outside AWS's main partition, by region prefix.
_DOMAINS = {"cn-": "amazonaws.com.cn", "us-iso-": "c2s.ic.gov", "us-isob-": "sc2s.sgov.gov",
            "us-isof-": "csp.hci.ic.gov"}
# Arm64 instance families, whose images this table does not hold.
GRAVITON = ("m6g", "m6gd", "c6g", "c6gd", "c6gn", "c7g", "r6g", "r6gd")


@dataclass(frozen=True)
class Version:
    """One version's image in one scope: the processors and Pythons its tags name (none for
    XGBoost from 1.2-1, nor Python for TensorFlow's serving image), and for Hugging Face the deep
    learning framework it runs on and the tag's build suffix per processor."""

    processors: tuple[str, ...]
    py_versions: tuple[str, ...] = ()
    base: str | None = None  # pytorch2.8.0
    suffixes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Framework:
    accounts: dict[str, str]
    repository: str  # {scope} and {base} (Hugging Face's framework) filled in per image
    versions: dict[str, dict[str, Version]]  # scope -> version -> image
    aliases: dict[str, dict[str, str]]  # scope -> "2.1" -> "2.1.0"


def _each(version: Version, *names: str) -> dict[str, Version]:
    return dict.fromkeys(names, version)


def _minor_aliases(versions) -> dict[str, str]:
    return {v.rsplit(".", 1)[0]: v for v in versions}


def _hf(base: str, py: str, gpu: str, cpu: str | None = None) -> Version:
    """A Hugging Face image on `base`: GPU only, or with `cpu` (its tag's suffix) a CPU image too."""
    suffixes = {"gpu": gpu, **({"cpu": cpu} if cpu else {})}
    return Version(tuple(suffixes), (py,), base, tuple(suffixes.items()))


_CPU, _SCRIPT = ("cpu",), ("cpu", "gpu")
_SKLEARN = _each(Version(_CPU, ("py3",)), "0.20.0", "0.23-1", "1.0-1", "1.2-1")
# XGBoost's tags name the processor and Python up to 1.0-1 only.
_XGBOOST = {**_each(Version(_CPU, ("py3",)), "0.90-1", "0.90-2", "1.0-1"),
            **_each(Version(()), "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1", "3.0-5")}
_PYTORCH = {**_each(Version(_SCRIPT, ("py310",)), "2.0.0", "2.0.1", "2.1.0", "2.2.0"),
            **_each(Version(_SCRIPT, ("py311",)), "2.3.0", "2.4.0", "2.5.1"),
            **_each(Version(_SCRIPT, ("py312",)), "2.6.0", "2.7.1", "2.8.0")}
_PYTORCH_INFERENCE = {v: _PYTORCH[v] for v in list(_PYTORCH)[:8]}  # to 2.6.0
_TENSORFLOW = {**_each(Version(_SCRIPT, ("py310",)), "2.13.0", "2.14.1", "2.16.2", "2.18.0"),
               "2.19.0": Version(_SCRIPT, ("py312",))}
_TENSORFLOW_INFERENCE = _each(Version(_SCRIPT), "2.13.0", "2.14.1", "2.16.1", "2.18.0", "2.19.0")
_HF = {"4.28.1": _hf("pytorch2.0.0", "py310", "cu118-ubuntu20.04"),
       "4.36.0": _hf("pytorch2.1.0", "py310", "cu121-ubuntu20.04"),
       "4.46.1": _hf("pytorch2.3.0", "py311", "cu121-ubuntu20.04"),
       "4.48.0": _hf("pytorch2.3.0", "py311", "cu121-ubuntu20.04"),
       "4.49.0": _hf("pytorch2.5.1", "py311", "cu124-ubuntu22.04"),
       "4.55.0": _hf("pytorch2.7.1", "py312", "cu128-ubuntu22.04"),
       "4.56.2": _hf("pytorch2.8.0", "py312", "cu129-ubuntu22.04")}
_HF_INFERENCE = {"4.28.1": _hf("pytorch2.0.0", "py310", "cu118-ubuntu20.04", "ubuntu20.04"),
                 "4.37.0": _hf("pytorch2.1.0", "py310", "cu118-ubuntu20.04", "ubuntu22.04"),
                 "4.48.0": _hf("pytorch2.3.0", "py311", "cu121-ubuntu22.04", "ubuntu22.04"),
                 "4.49.0": _hf("pytorch2.6.0", "py312", "cu124-ubuntu22.04", "ubuntu22.04"),
                 "4.51.3": _hf("pytorch2.6.0", "py312", "cu124-ubuntu22.04", "ubuntu22.04")}


def _framework(accounts, repository, training: dict, inference: dict, aliases: bool = True) -> Framework:
    versions = {"training": training, "inference": inference}
    return Framework(accounts, repository, versions,
                     {scope: _minor_aliases(v) if aliases else {} for scope, v in versions.items()})


FRAMEWORKS = {
    "sklearn": _framework(_OWN, "sagemaker-scikit-learn", {**_SKLEARN, "1.4-2": _SKLEARN["1.2-1"]}, _SKLEARN,
                          aliases=False),
    "xgboost": _framework(_OWN, "sagemaker-xgboost", _XGBOOST, _XGBOOST, aliases=False),
    "pytorch": _framework(_DLC, "pytorch-{scope}", _PYTORCH, _PYTORCH_INFERENCE),
    "tensorflow": _framework(_DLC, "tensorflow-{scope}", _TENSORFLOW, _TENSORFLOW_INFERENCE),
    "huggingface": _framework(_DLC, "huggingface-{base}-{scope}", _HF, _HF_INFERENCE, aliases=False),
}


class ImageError(ValueError):
    """No image in the table for this framework, version, Python, processor or region."""


def image_uri(image: dsl.Image, region: str, instance_type: str, scope: str) -> str:
    """The URI of `image` for a job on `instance_type` in `region`; `scope` is "training"
    (training and processing jobs) or "inference" (models). A version or base written as an alias
    ("2.1", "pytorch2.1") is looked up by its full version and named in the tag as written, as
    the SDK does."""
    framework = FRAMEWORKS[image.framework]
    known = framework.versions[scope]
    entry = known.get(framework.aliases[scope].get(image.version, image.version))
    if entry is None:
        raise ImageError(f"version {image.version} is not in the project's {image.framework} {scope} images "
                         f"(known: {', '.join(known)})")
    base = _base(image, entry)
    processor = _processor(instance_type, entry.processors) if entry.processors else None
    prefix = f"{base}-transformers{image.version}" if base else image.version
    tag = "-".join(part for part in (prefix, processor, _py_version(image, entry), dict(entry.suffixes).get(processor))
                   if part)
    repository = framework.repository.format(scope=scope, base=entry.base and entry.base.rstrip("0123456789."))
    return f"{_account(framework, region)}.dkr.ecr.{region}.{_domain(region)}/{repository}:{tag}"


def _base(image: dsl.Image, entry: Version) -> str | None:
    """The version of the framework under Hugging Face's, as the definition writes it."""
    if not entry.base:
        return None
    if image.base not in (entry.base, entry.base.rsplit(".", 1)[0]):
        raise ImageError(f"Hugging Face {image.version} runs on {entry.base}, not {image.base}")
    return image.base.lstrip("abcdefghijklmnopqrstuvwxyz")


def _py_version(image: dsl.Image, entry: Version) -> str | None:
    if not entry.py_versions:
        return None
    if image.py_version is None and len(entry.py_versions) == 1:
        return entry.py_versions[0]
    if image.py_version not in entry.py_versions:
        raise ImageError(f"Python {image.py_version} is not this image's ({', '.join(entry.py_versions)})")
    return image.py_version


def _processor(instance_type: str, processors: tuple[str, ...]) -> str:
    family = instance_type.split(".")[1]
    if family in GRAVITON:
        raise ImageError(f"{instance_type} is a Graviton (arm64) instance; the project's image table holds x86 images")
    processor = "inf" if family.startswith("inf") else "trn" if family.startswith("trn") else \
        "gpu" if family[0] in "gp" else "cpu"
    if processor not in processors:
        raise ImageError(f"there is no {processor} image for {instance_type} "
                         f"(the images run on: {', '.join(processors)})")
    return processor


def _account(framework: Framework, region: str) -> str:
    if region not in framework.accounts:
        raise ImageError(f"region {region} is not in the project's table for this image "
                         f"(regions: {', '.join(sorted(framework.accounts))})")
    return framework.accounts[region]


def _domain(region: str) -> str:
    return next((domain for prefix, domain in _DOMAINS.items() if region.startswith(prefix)), "amazonaws.com")
