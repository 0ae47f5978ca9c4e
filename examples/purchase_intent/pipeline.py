"""The worked example: will this browsing session end in a purchase?

The tabular pipeline (`pipelines.tabular`) with two settings of its own, the label `Revenue` and the
Online Shoppers feature set (`shoppers.py`, shipped with the training code), on the UCI Online
Shoppers Purchasing Intention data or, by default, on sessions generated with its schema
(`shoppers_data.py`). Run it with

    python deploy.py run --local --definition examples/purchase_intent
"""
from __future__ import annotations

from pathlib import Path

from pipelines import tabular
from pipelines.settings import with_defaults

HERE = Path(__file__).resolve().parent
NAME = "purchase-intent"  # its settings are [pipeline.purchase-intent] of the project's ml-pipelines.toml
SYNTHETIC_DATA = "data/online_shoppers_synthetic.csv"  # under the pipeline's prefix; `run --local` writes it
SYNTHETIC_ROWS = 12_330  # the size of the real data set

Settings = with_defaults(tabular.Settings, label="Revenue", problem_type="binary", feature_set=str(HERE / "shoppers.py"))
check_input = tabular.check_input  # its first look at a local input, before anything runs


def definition(cfg):
    return tabular.pipeline(cfg, NAME, display_name="Purchase intent",
                            description="Predicts the likelihood that a browsing session ends in a purchase (an ensemble of model families).",
                            default_data=f"{cfg.s3_root}/{SYNTHETIC_DATA}")


def example_data(dest: Path) -> Path:
    """What `run --local` puts at InputData's default when it is not in the local store yet:
    sessions generated with the real data set's schema and size, from a fixed seed."""
    import shoppers_data  # beside this file, which is on sys.path while the definition is loaded

    return shoppers_data.write_csv(shoppers_data.generate(SYNTHETIC_ROWS, seed=0), dest)
