"""The SageMaker images the local runner emulates: every Python package each one's build installs,
and where its processes start.

One table, read off the images' public builds, at the branch (or tag) that built each image and the
commit read:

    sagemaker-scikit-learn  aws/sagemaker-scikit-learn-container: requirements.txt (the final image's
                            `pip install -r`), docker/<version>/base/Dockerfile.cpu (scikit-learn by pip,
                            pyarrow by conda) and the Miniconda installer the base starts from, whose
                            own environment (conda's dependencies) brings requests and tqdm
    sagemaker-xgboost       aws/sagemaker-xgboost-container: requirements.txt, docker/<version>/base/
                            Dockerfile.cpu (xgboost by pip, pyarrow and tqdm by conda, requests where the
                            base pins it), docker/<version>/final/Dockerfile.cpu (sagemaker-debugger as
                            smdebug, 1.3-1 on)

A version is `==` unless the build leaves it open: then the build's own specifier (``>=1.9.0``), or
nothing where the build names no version (a conda base package, an unpinned requirement). What an
image has that no package index holds (the container's own package, built from its repository;
mlio, built from source) is `absent`, and a job's log says so. `python` is the image's interpreter:
jobs here run on the runner's Python, and `pipelines.local.environments` says so in each job's log.

Working directories. The Dockerfiles set no WORKDIR, so every container starts in ``/``: processing
jobs, the built-in algorithm's training, and serving, whose server (sagemaker-containers'
``_server.start``) runs gunicorn without changing directory and puts the code directory on its
``--pythonpath``. Script-mode training starts in ``/opt/ml/code``: sagemaker-training runs the
entry point with ``cwd=environment.code_dir`` (src/sagemaker_training/process.py, `ProcessRunner.run`),
and sagemaker-containers (the XGBoost images' toolkit) with ``cwd=_env.code_dir``
(src/sagemaker_containers/_process.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SKLEARN = "sagemaker-scikit-learn"
XGBOOST = "sagemaker-xgboost"
FAMILIES = (SKLEARN, XGBOOST)
# import name of the framework packages, for the check that an environment really imports
MODULES = {"scikit-learn": "sklearn", "pandas": "pandas", "numpy": "numpy", "scipy": "scipy",
           "pyarrow": "pyarrow", "xgboost": "xgboost", "boto3": "boto3"}
# boto3 before 1.28.0 ignores AWS_ENDPOINT_URL(_S3), so a job could not reach the local S3 endpoint:
# environments get at least this version (and the botocore it needs), and the job log names the image's.
BOTO3_FLOOR = "1.28.0"
WORKDIR = "/"  # no Dockerfile here sets WORKDIR (module docstring)
TRAINING_CWD = "/opt/ml/code"  # where the training toolkits start a script-mode entry point


@dataclass(frozen=True)
class Image:
    family: str  # the repository name in the image URI
    version: str  # the framework version (the tag's first part)
    python: str  # the image's Python
    packages: dict[str, str]  # name (with extras) -> version ("1.4.2"), specifier (">=1.9.0") or "" (any)
    source: str  # where the packages were read
    absent: tuple[str, ...] = ()  # what the image has that cannot be installed here, and why
    workdir: str = WORKDIR  # where processing jobs, the built-in algorithm and serving start

    @property
    def name(self) -> str:
        return f"{self.family}:{self.version}"

    def version_of(self, name: str) -> str:
        """The table's entry for a package named without extras ("dask" for "dask[dataframe]")."""
        return next((spec for key, spec in self.packages.items() if key.split("[")[0] == name), "")


def _image(family: str, version: str, python: str, source: str, packages: str, *absent: str) -> Image:
    """`packages`: requirement lines as the build writes them ("pandas==1.1.3", "scipy>=1.9.0", "six")."""
    table = {}
    for requirement in packages.split():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+(?:\[[a-z,]+\])?)(.*)", requirement)
        name, spec = match[1].lower().replace("_", "-"), match[2]
        table[name] = spec[2:] if spec.startswith("==") else spec
    return Image(family, version, python, table, source, absent)


_SK = "aws/sagemaker-scikit-learn-container"
_XG = "aws/sagemaker-xgboost-container"
_OWN_SK = "sagemaker_sklearn_container (the container's own package, built from its repository)"
_OWN_XG = ("sagemaker_xgboost_container and sagemaker_algorithm_toolkit (the container's own packages, built "
           "from its repository; the runner's xgboost_algorithm plays the algorithm)")
_MLIO = "mlio (built from source in the image)"
_SMDEBUG = "smdebug (its pyinstrument==3.4.2 has no build for Python 3.11)"
# What the sklearn images' requirements.txt files share, then each image's differences.
_SK_SERVING = ("Flask==1.1.1 itsdangerous==2.0.1 model-archiver==1.0.3 multi-model-server==1.1.1 protobuf==3.20.2 "
               "psutil==5.7.2 retrying==1.3.3 sagemaker-containers==2.8.6.post2 sagemaker-inference==1.2.0 six==1.15.0")
# The xgboost images' requirements.txt files all pin these.
_XG_COMMON = "Flask==1.1.1 psutil==5.6.7 retrying==1.3.3 sagemaker-containers==2.8.6.post2 boto3==1.17.52 botocore==1.20.52"

IMAGES: dict[tuple[str, str], Image] = {(i.family, i.version): i for i in [
    _image(SKLEARN, "0.20.0", "3.7",
           f"{_SK}@0.20.0 (d021ef4): requirements.txt; base: scikit-learn==0.20.0 (pip), pyarrow=0.14.1 and scipy "
           "(conda); Miniconda3-py37_4.12.0: requests, tqdm",
           "cryptography==35.0.0 numpy==1.19.5 pandas==0.25.* retrying==1.3.3 sagemaker-containers>=2.8.3 "
           "sagemaker-training>=3.4.2 scikit-learn==0.20.0 six itsdangerous==2.0.1 jinja2==2.10.2 MarkupSafe==1.1.1 "
           "Werkzeug==0.15.6 certifi==2023.7.22 pyarrow==0.14.1 scipy requests==2.27.1 tqdm",
           _OWN_SK, _MLIO),
    _image(SKLEARN, "0.23-1", "3.7",
           f"{_SK}@0.23-1 (e7ab948): requirements.txt; base: scikit-learn==0.23.2 (pip), pyarrow=1.0.0 (conda); "
           "Miniconda3-py37_4.12.0: requests, tqdm",
           f"{_SK_SERVING} boto3==1.24.17 botocore==1.27.18 cryptography==35.0.0 gunicorn==20.0.4 jinja2==3.0.3 "
           "MarkupSafe==2.1.1 numpy==1.19.2 pandas==1.1.3 pyarrow==1.0.0 python-dateutil==2.8.1 "
           "sagemaker-training==4.0.1 scikit-learn==0.23.2 scipy==1.5.3 Werkzeug==0.15.6 requests==2.27.1 tqdm",
           _OWN_SK, _MLIO),
    _image(SKLEARN, "1.0-1", "3.8",
           f"{_SK}@1.0-1 (117925d): requirements.txt; base: scikit-learn==1.0.2 (pip), pyarrow=14.0.1 (conda); "
           "Miniconda3-py38_4.12.0: requests, tqdm",
           f"{_SK_SERVING} boto3==1.28.57 botocore>=1.31.57,<1.32.0 cryptography==40.0.2 gunicorn==20.0.4 "
           "pandas==1.1.3 python-dateutil==2.8.1 sagemaker-training==4.7.4 scikit-learn==1.0.2 scipy==1.8.0 "
           "jinja2==3.0.3 MarkupSafe==2.1.1 Werkzeug==0.15.6 setuptools==65.5.1 wheel==0.38.1 numpy==1.24.1 "
           "certifi==2023.7.22 pyopenssl==23.1.0 gevent==23.9.1 pyarrow==14.0.1 requests==2.27.1 tqdm",
           _OWN_SK, _MLIO),
    _image(SKLEARN, "1.2-1", "3.9",
           f"{_SK}@1.2-1 (b440c40): requirements.txt; base: scikit-learn==1.2.1 (pip), pyarrow=14.0.1 (conda); "
           "Miniconda3-py39_24.7.1-0: requests, tqdm",
           f"{_SK_SERVING} boto3==1.28.57 botocore>=1.31.57,<1.32.0 cryptography gunicorn==23.0.0 pandas==1.1.3 "
           "python-dateutil==2.8.1 sagemaker-training==4.8.0 scikit-learn==1.2.1 scipy==1.8.0 urllib3==1.26.17 "
           "jinja2==3.0.3 MarkupSafe==2.1.1 numpy==1.24.1 gevent==23.9.1 Werkzeug==2.0.3 setuptools wheel certifi "
           "pyarrow==14.0.1 requests==2.32.3 tqdm",
           _OWN_SK, _MLIO),
    # No conda here: the base installs Python 3.10 from deadsnakes, then uv installs these, and none of them
    # needs requests, so it is not here. (Debian's Python also reads /usr/lib/python3/dist-packages, where
    # apt's python3-* packages go; the Dockerfile installs none by name, and whatever its apt packages pull
    # in is not reproduced.)
    _image(SKLEARN, "1.4-2", "3.10",
           f"{_SK}@v1.4-2 (6c5704d): requirements.txt; base: numpy==2.1.0, scikit-learn==1.4.2, pyarrow==17.0.0 (uv)",
           f"{_SK_SERVING} numpy==2.1.0 scikit-learn==1.4.2 scipy>=1.9.0 pandas==2.3.2 pyarrow==17.0.0 "
           "boto3==1.28.57 botocore>=1.31.57,<1.32.0 certifi cryptography==46.0.7 gevent==23.9.1 gunicorn==23.0.0 "
           "jinja2<3.0 MarkupSafe<2.0 python-dateutil PyYAML==6.0.1 sagemaker-training==4.8.0 setuptools==80.9.0 "
           "urllib3==1.26.17 Werkzeug==2.0.3 wheel==0.45.1",
           _OWN_SK, _MLIO),
    _image(XGBOOST, "0.90-1", "3.7",
           f"{_XG}@0.90-1 (132188b): requirements.txt; base: xgboost==0.90 (pip), pyarrow=0.14.1 (conda); "
           "Miniconda3-4.7.12.1: tqdm",
           "Flask==1.1.1 PyYAML==5.4.1 boto3==1.10.47 botocore==1.13.47 cryptography==3.4.6 gunicorn<20.0.0 "
           "matplotlib==3.1.2 numpy==1.18.1 pandas==0.25.3 psutil==5.6.7 python-dateutil==2.8.0 requests<2.21 "
           "retrying==1.3.3 sagemaker-containers==2.8.6.post2 scikit-learn==0.22.1 scipy==1.2.2 urllib3==1.25.9 "
           "wheel xgboost==0.90 pyarrow==0.14.1 tqdm",
           _OWN_XG, _MLIO),
    _image(XGBOOST, "0.90-2", "3.6",
           f"{_XG}@0.90-2 (a034e4b): requirements.txt; base: xgboost==0.90 (pip), pyarrow=0.14.1 (conda); "
           "Miniconda3-py37_4.8.2: tqdm",
           "Flask==1.1.1 PyYAML==5.4.1 boto3==1.13.21 botocore==1.13.14 cryptography==3.4.6 gunicorn<20.0.0 "
           "matplotlib==3.2.1 multi-model-server==1.1.1 numpy==1.18.4 pandas==1.0.4 psutil==5.6.7 "
           "python-dateutil==2.8.0 requests<2.21 retrying==1.3.3 sagemaker-containers>=2.8.3,<2.9 "
           "sagemaker-inference==1.2.0 scikit-learn==0.23.1 scipy==1.2.2 urllib3==1.25.9 wheel xgboost==0.90 "
           "pyarrow==0.14.1 tqdm",
           _OWN_XG, _MLIO, _SMDEBUG),
    _image(XGBOOST, "1.0-1", "3.7",
           f"{_XG}@1.0-1 (0c7a3b8): requirements.txt (numpy left to pip: the base's 1.19.5 stays); base: "
           "xgboost==1.0.0 (pip), pyarrow=0.14.1 and tqdm (conda)",
           f"{_XG_COMMON} Pillow==9.1.1 PyYAML==5.4.1 gunicorn==19.10.0 cryptography==3.4.6 itsdangerous==2.0.1 "
           "matplotlib==3.3.2 multi-model-server==1.1.1 pandas==1.1.3 protobuf==3.20.1 python-dateutil==2.8.0 "
           "requests==2.25.1 sagemaker-inference==1.2.0 scikit-learn==0.24.1 scipy==1.2.2 urllib3==1.26.5 "
           "wheel==0.36.2 jinja2==2.11.3 MarkupSafe==1.1.1 Werkzeug==0.15.6 numpy==1.19.5 xgboost==1.0.0 "
           "pyarrow==0.14.1 tqdm",
           _OWN_XG, _MLIO, _SMDEBUG),
    *[_image(XGBOOST, version, "3.7",
             f"{_XG}@{version} ({commit}): requirements.txt; base: xgboost==1.2.0 (pip), pyarrow=1.0 and tqdm (conda)",
             f"{_XG_COMMON} PyYAML==5.4 Pillow==9.1.1 cryptography==35.0.0 gunicorn==19.10.0 matplotlib==3.3.2 "
             "multi-model-server==1.1.1 numpy==1.21.6 pandas==1.1.3 protobuf==3.20.1 python-dateutil==2.8.0 "
             "requests==2.25.1 sagemaker-inference==1.2.0 scikit-learn==0.23.2 scipy==1.5.3 urllib3==1.26.5 "
             "wheel==0.35.1 jinja2==3.0.3 itsdangerous==2.0.1 MarkupSafe==2.1.1 Werkzeug==0.15.6 xgboost==1.2.0 "
             "pyarrow==1.0.* tqdm",
             _OWN_XG, _MLIO, _SMDEBUG) for version, commit in (("1.2-1", "0d8f55d"), ("1.2-2", "dd637a0"))],
    _image(XGBOOST, "1.3-1", "3.7",
           f"{_XG}@1.3-1 (07ece4c): requirements.txt; base: xgboost==1.3.3 (pip), pyarrow=1.0 (conda); "
           "Miniconda3-py39_4.9.2: tqdm; final: sagemaker-debugger 1.0.29",
           f"{_XG_COMMON} PyYAML==5.4.1 Pillow==9.1.1 cryptography==35.0.0 gunicorn==19.10.0 itsdangerous==2.0.1 "
           "matplotlib==3.4.1 multi-model-server==1.1.2 numpy==1.21.6 pandas==1.2.4 protobuf==3.20.1 "
           "python-dateutil==2.8.1 requests==2.25.1 sagemaker-inference==1.5.5 scikit-learn==0.24.1 scipy==1.6.2 "
           "urllib3==1.26.5 wheel==0.36.2 jinja2==2.10.2 MarkupSafe==1.1.1 Werkzeug==0.15.6 xgboost==1.3.3 "
           "pyarrow==1.0.* tqdm",
           _OWN_XG, _MLIO, _SMDEBUG),
    _image(XGBOOST, "1.5-1", "3.8",
           f"{_XG}@1.5-1 (4eef773): requirements.txt; base: requests==2.27.0 and xgboost==1.5.2 (pip), "
           "pyarrow=14.0.1 (conda); Miniconda3-py39_23.10.0-1: tqdm; final: sagemaker-debugger 1.0.29",
           f"{_XG_COMMON} PyYAML==5.4.1 Pillow==9.1.1 cryptography==39.0.1 dask==2022.11.1 dask-cuda==22.12.0 "
           "gunicorn==19.10.0 itsdangerous==2.0.1 matplotlib==3.4.1 multi-model-server==1.1.2 numpy==1.24.4 "
           "pandas==1.5.3 protobuf==3.20.1 pynvml==11.4.1 python-dateutil==2.8.2 sagemaker-inference==1.5.5 "
           "scikit-learn==0.24.1 scipy==1.8.0 urllib3==1.26.5 wheel==0.36.2 jinja2==2.11.3 MarkupSafe==1.1.1 "
           "Werkzeug==0.15.6 certifi==2023.7.22 pyopenssl==23.1.0 gevent==23.9.1 requests==2.27.0 xgboost==1.5.2 "
           "pyarrow==14.0.1 tqdm",
           _OWN_XG, _MLIO, _SMDEBUG),
    _image(XGBOOST, "1.7-1", "3.9",
           f"{_XG}@1.7-1 (f7a93a2): requirements.txt; base: xgboost==1.7.4 (pip), pyarrow=14.0.1 (conda); "
           "Miniconda3-py39_24.7.1-0: tqdm; final: sagemaker-debugger 1.0.29",
           f"{_XG_COMMON} PyYAML==5.4.1 Pillow==9.1.1 cryptography==39.0.1 dask==2022.11.1 dask-cuda==22.12.0 "
           "gunicorn==23.0.0 itsdangerous==2.0.1 matplotlib==3.4.1 multi-model-server==1.1.2 numpy==1.24.1 "
           "pandas==1.2.4 protobuf==3.20.1 pynvml==11.4.1 python-dateutil==2.8.1 requests==2.29.0 "
           "sagemaker-inference==1.5.5 scikit-learn==0.24.1 scipy==1.8.0 urllib3==1.26.5 wheel==0.36.2 "
           "jinja2==2.11.3 MarkupSafe==1.1.1 Werkzeug==0.15.6 certifi==2023.7.22 gevent==23.9.1 numba==0.58.1 "
           "xgboost==1.7.4 pyarrow==14.0.1 tqdm",
           _OWN_XG, _MLIO, _SMDEBUG),
    _image(XGBOOST, "3.0-5", "3.10",
           f"{_XG}@release-3.0.5 (fe01f24): requirements.txt; base: xgboost==3.0.5, numpy, pandas, pyarrow (pip), "
           "requests=2.32.3 (conda); Miniforge3-25.9.1-0: tqdm; final: protobuf<=3.20.3, fonttools>=4.60.2, "
           "sagemaker-debugger v1.0.32",
           f"{_XG_COMMON.replace('psutil==5.6.7', 'psutil==5.8.0')} PyYAML==6.0.1 Pillow==9.1.1 "
           "cryptography==48.0.1 dask[dataframe]==2024.11.2 dask-cuda==24.12.0 cuda-python==12.6.0 gunicorn==23.0.0 "
           "itsdangerous==2.0.1 matplotlib==3.9.2 multi-model-server==1.1.2 numpy==2.1.0 pandas==2.2.3 "
           "pynvml==11.4.1 python-dateutil==2.8.2 requests==2.32.3 sagemaker-inference==1.5.5 scipy==1.15.0 "
           "scikit-learn==1.5.2 urllib3==1.26.5 wheel==0.46.2 jinja2==2.11.3 MarkupSafe==1.1.1 Werkzeug==0.15.6 "
           "certifi==2023.7.22 gevent==23.9.1 numba==0.61.0 setuptools<81 xgboost==3.0.5 pyarrow==22.0.0 "
           "protobuf>=3.20.0,<=3.20.3 fonttools>=4.60.2 tqdm",
           _OWN_XG, _MLIO, _SMDEBUG),
]}

# <registry>/<family>:<version>[-cpu|-gpu][-py3][...]
_URI = re.compile(r"(?:.*/)?(?P<family>[a-z0-9-]+):(?P<version>\d+(?:\.\d+)*(?:-\d+)?)(?:-[a-z0-9.-]*)?")


class UnknownImage(ValueError):
    """An image URI the local runner has no environment for."""


def image_for(uri: str | None) -> Image:
    """The table's entry for an image URI, or UnknownImage saying what is supported."""
    match = _URI.fullmatch(uri or "")
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
