"""The SageMaker images the local runner emulates, and the package versions each one carries.

One table, read off the images' public builds (the container repositories'
Dockerfiles and requirements.txt, at the branch or tag that built the image):

    sagemaker-scikit-learn  aws/sagemaker-scikit-learn-container, branch <version>
                            (1.4-2: tag v1.4-2), docker/<version>/base/Dockerfile.cpu + requirements.txt
    sagemaker-xgboost       aws/sagemaker-xgboost-container, branch <version>
                            (3.0-5: release-3.0.5), docker/<version>/base/Dockerfile.cpu + requirements.txt

A version is `==` unless the build leaves it open (then the build's own
specifier, e.g. ``>=1.9.0``). `python` is the image's interpreter; jobs here run on
the runner's Python, and `pipelines.local.environments` says so in each job's log.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SKLEARN = "sagemaker-scikit-learn"
XGBOOST = "sagemaker-xgboost"
FAMILIES = (SKLEARN, XGBOOST)
# import name of each package, for the check that an environment really imports
MODULES = {"scikit-learn": "sklearn", "pandas": "pandas", "numpy": "numpy", "scipy": "scipy",
           "pyarrow": "pyarrow", "xgboost": "xgboost", "boto3": "boto3"}
# boto3 before 1.28.0 ignores AWS_ENDPOINT_URL(_S3), so a job could not reach the local S3 endpoint:
# environments get at least this version, and the job log names the image's.
BOTO3_FLOOR = "1.28.0"


@dataclass(frozen=True)
class Image:
    family: str  # the repository name in the image URI
    version: str  # the framework version (the tag's first part)
    python: str  # the image's Python
    packages: dict[str, str]  # name -> version ("1.4.2") or specifier (">=1.9.0")
    source: str  # where the versions were read

    @property
    def name(self) -> str:
        return f"{self.family}:{self.version}"


def _image(family: str, version: str, python: str, source: str, **packages: str) -> Image:
    return Image(family, version, python, {name.replace("_", "-"): v for name, v in packages.items()}, source)


_SK = "aws/sagemaker-scikit-learn-container"
_XG = "aws/sagemaker-xgboost-container"
IMAGES: dict[tuple[str, str], Image] = {(i.family, i.version): i for i in [
    _image(SKLEARN, "0.20.0", "3.7", f"{_SK}@0.20.0", scikit_learn="0.20.0", pandas="0.25.*",
           numpy="1.19.5", pyarrow="0.14.1"),
    _image(SKLEARN, "0.23-1", "3.7", f"{_SK}@0.23-1", scikit_learn="0.23.2", pandas="1.1.3",
           numpy="1.19.2", scipy="1.5.3", pyarrow="1.0.0", boto3="1.24.17"),
    _image(SKLEARN, "1.0-1", "3.8", f"{_SK}@1.0-1", scikit_learn="1.0.2", pandas="1.1.3",
           numpy="1.24.1", scipy="1.8.0", pyarrow="14.0.1", boto3="1.28.57"),
    _image(SKLEARN, "1.2-1", "3.9", f"{_SK}@1.2-1", scikit_learn="1.2.1", pandas="1.1.3",
           numpy="1.24.1", scipy="1.8.0", pyarrow="14.0.1", boto3="1.28.57"),
    _image(SKLEARN, "1.4-2", "3.10", f"{_SK}@v1.4-2", scikit_learn="1.4.2", pandas="2.3.2",
           numpy="2.1.0", scipy=">=1.9.0", pyarrow="17.0.0", boto3="1.28.57"),
    _image(XGBOOST, "0.90-1", "3.7", f"{_XG}@0.90-1", xgboost="0.90", scikit_learn="0.22.1",
           pandas="0.25.3", numpy="1.18.1", scipy="1.2.2", pyarrow="0.14.1", boto3="1.10.47"),
    _image(XGBOOST, "0.90-2", "3.6", f"{_XG}@0.90-2", xgboost="0.90", scikit_learn="0.23.1",
           pandas="1.0.4", numpy="1.18.4", scipy="1.2.2", pyarrow="0.14.1", boto3="1.13.21"),
    # 1.0-1's requirements.txt leaves numpy to pip; its final Dockerfile replaces conda's numpy 1.19.5.
    _image(XGBOOST, "1.0-1", "3.7", f"{_XG}@1.0-1", xgboost="1.0.0", scikit_learn="0.24.1",
           pandas="1.1.3", numpy="1.19.5", scipy="1.2.2", pyarrow="0.14.1", boto3="1.17.52"),
    _image(XGBOOST, "1.2-1", "3.7", f"{_XG}@1.2-1", xgboost="1.2.0", scikit_learn="0.23.2",
           pandas="1.1.3", numpy="1.21.6", scipy="1.5.3", pyarrow="1.0", boto3="1.17.52"),
    _image(XGBOOST, "1.2-2", "3.7", f"{_XG}@1.2-2", xgboost="1.2.0", scikit_learn="0.23.2",
           pandas="1.1.3", numpy="1.21.6", scipy="1.5.3", pyarrow="1.0", boto3="1.17.52"),
    _image(XGBOOST, "1.3-1", "3.7", f"{_XG}@1.3-1", xgboost="1.3.3", scikit_learn="0.24.1",
           pandas="1.2.4", numpy="1.21.6", scipy="1.6.2", pyarrow="1.0", boto3="1.17.52"),
    _image(XGBOOST, "1.5-1", "3.8", f"{_XG}@1.5-1", xgboost="1.5.2", scikit_learn="0.24.1",
           pandas="1.5.3", numpy="1.24.4", scipy="1.8.0", pyarrow="14.0.1", boto3="1.17.52"),
    _image(XGBOOST, "1.7-1", "3.9", f"{_XG}@1.7-1", xgboost="1.7.4", scikit_learn="0.24.1",
           pandas="1.2.4", numpy="1.24.1", scipy="1.8.0", pyarrow="14.0.1", boto3="1.17.52"),
    _image(XGBOOST, "3.0-5", "3.10", f"{_XG}@release-3.0.5", xgboost="3.0.5", scikit_learn="1.5.2",
           pandas="2.2.3", numpy="2.1.0", scipy="1.15.0", pyarrow="22.0.0", boto3="1.17.52"),
]}

# <registry>/<family>:<version>[-cpu|-gpu][-py3][...]
_URI = re.compile(r"(?:.*/)?(?P<family>[a-z0-9-]+):(?P<version>\d+(?:\.\d+)*(?:-\d+)?)(?:-[a-z0-9.-]*)?")


# AWS's built-in algorithms whose images hold their own closed training and serving code (MXNet models).
BUILT_IN_ALGORITHMS = {"kmeans": ("k-means", "sklearn.cluster.KMeans"), "pca": ("PCA", "sklearn.decomposition.PCA")}


class UnknownImage(ValueError):
    """An image URI the local runner has no environment for."""


def image_for(uri: str | None) -> Image:
    """The table's entry for an image URI, or UnknownImage saying what is supported."""
    match = _URI.fullmatch(uri or "")
    if match and match["family"] in BUILT_IN_ALGORITHMS:
        name, instead = BUILT_IN_ALGORITHMS[match["family"]]
        raise UnknownImage(f"image {uri!r} is AWS's built-in {name} algorithm, which is not emulated locally (its "
                           f"closed-source container writes an MXNet model only it serves): train with {instead} "
                           f"in script mode on the scikit-learn image to run the same pipeline here and in SageMaker")
    if not match or match["family"] not in FAMILIES:
        raise UnknownImage(f"image {uri!r} is not supported locally: the local runner emulates the "
                           f"{' and '.join(FAMILIES)} images")
    key = (match["family"], match["version"])
    if key not in IMAGES:
        known = ", ".join(v for f, v in IMAGES if f == key[0])
        raise UnknownImage(f"image {uri!r}: version {key[1]} of {key[0]} is not in the local image table "
                           f"(known: {known})")
    return IMAGES[key]


def before(version: str, other: str) -> bool:
    """Whether image version ``version`` (e.g. "1.2-2") is older than ``other`` ("1.3-1")."""
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.split(r"[.-]", v))

    return parts(version) < parts(other)
