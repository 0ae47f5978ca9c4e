"""Data for the worked example: a synthetic UCI-shaped generator and the UCI downloader.

The generator is the embedded default, so the pipeline runs on a fresh machine
with no download; `download_uci` fetches the real file when it is wanted:

    python examples/purchase_intent/shoppers_data.py --dest data [--from FILE|URL]
"""
import argparse
import io
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.files import write_atomically

UCI_URL = "https://archive.ics.uci.edu/static/public/468/online+shoppers+purchasing+intention+dataset.zip"
CSV_NAME = "online_shoppers_intention.csv"
LABEL = "Revenue"
COLUMNS = [
    "Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
    "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues",
    "SpecialDay", "Month", "OperatingSystems", "Browser", "Region", "TrafficType",
    "VisitorType", "Weekend", LABEL,
]

# Marginals and effects roughly as in the real file: value -> (share, effect on the purchase logit).
_MONTHS = {"Feb": (.015, -2.0), "Mar": (.155, -.3), "May": (.273, -.2), "June": (.023, -.4),
           "Jul": (.035, .1), "Aug": (.035, .2), "Sep": (.036, .3), "Oct": (.045, .4),
           "Nov": (.243, .7), "Dec": (.140, -.1)}
_VISITORS = {"Returning_Visitor": (.856, 0.0), "New_Visitor": (.137, .5), "Other": (.007, .2)}
_TRAFFIC = {2: (.317, .3), 1: (.199, -.1), 3: (.166, -.3), 4: (.087, 0.0), 13: (.060, -.6),
            10: (.036, .1), 6: (.036, -.2), 8: (.028, .3), 5: (.021, .2), 11: (.020, 0.0), 20: (.016, .2)}
_OS = {2: .535, 1: .210, 3: .207, 4: .039, 8: .006, 6: .002, 7: .001}
_BROWSERS = {2: .646, 1: .200, 4: .060, 5: .038, 6: .014, 10: .013, 8: .011, 3: .009, 13: .005, 7: .004}
_REGIONS = {1: .388, 3: .195, 4: .096, 2: .092, 6: .065, 7: .062, 9: .041, 8: .035, 5: .026}
_SPECIAL_DAYS = [0.2, 0.4, 0.6, 0.8, 1.0]


def _draw(rng, table, n):
    """Draw n keys of `table` by their share (first element when values are tuples)."""
    keys = list(table)
    shares = np.array([v[0] if isinstance(v, tuple) else v for v in table.values()])
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=shares / shares.sum())]


def _effect(table, values):
    return np.array([table[v][1] for v in values])


def generate(n_rows=5000, seed=0):
    """A synthetic data set with the UCI schema, dtypes and roughly its marginals.

    A latent engagement drives page counts, durations and exit rates; the
    purchase depends on it, on month and visitor type, and PageValues (which
    the real site computes from pages seen before a purchase) is drawn after
    the label, so it is strongly but not perfectly predictive.
    """
    rng = np.random.default_rng(seed)
    n = n_rows
    month = _draw(rng, _MONTHS, n)
    visitor = _draw(rng, _VISITORS, n)
    traffic = _draw(rng, _TRAFFIC, n).astype("int64")
    special = np.where(np.isin(month, ["Feb", "May"]) & (rng.random(n) < 0.3),
                       rng.choice(_SPECIAL_DAYS, size=n), 0.0)
    weekend = rng.random(n) < 0.233

    engagement = rng.normal(size=n)
    counts = {
        "Administrative": rng.poisson(np.exp(0.2 + 0.7 * engagement)),
        "Informational": rng.poisson(np.exp(-1.5 + 0.8 * engagement)),
        "ProductRelated": rng.poisson(np.exp(2.6 + 0.8 * engagement)),
    }
    seconds_per_page = {"Administrative": 3.2, "Informational": 3.9, "ProductRelated": 3.4}
    durations = {t: np.round(c * np.exp(rng.normal(seconds_per_page[t], 0.7, n)), 4)
                 for t, c in counts.items()}
    single_page = sum(counts.values()) <= 1
    exit_rates = np.clip(np.exp(rng.normal(-3.4 - 0.3 * engagement, 0.6)), 0, 0.2)
    exit_rates = np.round(np.where(single_page, 0.2, exit_rates), 6)
    bounce_rates = np.round(np.where(single_page, 0.2, exit_rates * rng.random(n) ** 3), 6)

    logit = (-1.8 + 0.6 * engagement - 12 * exit_rates - 0.8 * special + 0.1 * weekend
             + _effect(_MONTHS, month) + _effect(_VISITORS, visitor) + _effect(_TRAFFIC, traffic)
             + rng.normal(0, 0.8, n))
    revenue = rng.random(n) < 1 / (1 + np.exp(-logit))

    has_value = rng.random(n) < np.where(revenue, 0.78, 0.10)
    value = np.exp(rng.normal(np.where(revenue, 3.3, 2.4), 0.9))
    page_values = np.round(np.where(has_value, value, 0.0), 6)

    df = pd.DataFrame({
        "Administrative": counts["Administrative"].astype("int64"),
        "Administrative_Duration": durations["Administrative"],
        "Informational": counts["Informational"].astype("int64"),
        "Informational_Duration": durations["Informational"],
        "ProductRelated": counts["ProductRelated"].astype("int64"),
        "ProductRelated_Duration": durations["ProductRelated"],
        "BounceRates": bounce_rates,
        "ExitRates": exit_rates,
        "PageValues": page_values,
        "SpecialDay": special,
        "Month": pd.Series(month, dtype="str"),
        "OperatingSystems": _draw(rng, _OS, n).astype("int64"),
        "Browser": _draw(rng, _BROWSERS, n).astype("int64"),
        "Region": _draw(rng, _REGIONS, n).astype("int64"),
        "TrafficType": traffic,
        "VisitorType": pd.Series(visitor, dtype="str"),
        "Weekend": weekend,
        LABEL: revenue,
    })
    return df[COLUMNS]


def write_csv(df, path):
    """Write `df` in the UCI CSV format (booleans as TRUE/FALSE), atomically."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_bool_dtype(out[c]):
            out[c] = np.where(out[c], "TRUE", "FALSE")
    return write_atomically(path, out.to_csv(index=False).encode("utf-8"))


def _fetch(url, opener):
    """Bytes at `url`: an http(s)/file URL through `opener`, or a local path."""
    if urllib.parse.urlparse(str(url)).scheme in ("http", "https", "file"):
        with opener(url) as response:
            return response.read()
    return Path(url).read_bytes()


class DownloadError(ValueError):
    """The data set could not be fetched or is not the one expected; the message says what to do."""


def download_uci(dest_dir, url=UCI_URL, opener=urllib.request.urlopen):
    """Fetch the UCI zip archive (or take a copy of it, or of its CSV, from a path or URL) and write its
    CSV into dest_dir after checking the header."""
    try:
        payload = _fetch(url, opener)
    except OSError as e:
        raise DownloadError(
            f"could not fetch {url} ({getattr(e, 'reason', None) or e.strerror or e}): check the network, or "
            f"give a copy you already have with `python examples/purchase_intent/shoppers_data.py --from FILE|URL`") from None
    if zipfile.is_zipfile(io.BytesIO(payload)):
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = [m for m in archive.namelist() if Path(m).name == CSV_NAME]
        if not members:
            raise DownloadError(
                f"{url} has no {CSV_NAME} (it holds: {', '.join(archive.namelist()) or 'nothing'}); "
                f"give the UCI archive {UCI_URL} or its CSV")
        source, data = f"{members[0]} in {url}", archive.read(members[0])
    else:
        source, data = str(url), payload
    header = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip().split(",")
    if header != COLUMNS:
        raise DownloadError(
            f"{source} has header {header[:4]}{'...' if len(header) > 4 else ''}, not the UCI Online Shoppers "
            f"columns: give the archive from {UCI_URL} or its {CSV_NAME}")
    return write_atomically(Path(dest_dir) / CSV_NAME, data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download the UCI Online Shoppers Purchasing Intention data "
                                                 "set (the worked example's real data).")
    parser.add_argument("--dest", default="data", help=f"folder to write {CSV_NAME} into (default: data)")
    parser.add_argument("--from", dest="source", metavar="FILE|URL",
                        help="a copy you already have: the UCI zip archive or its CSV, as a path or URL")
    args = parser.parse_args(argv)
    try:
        print(download_uci(Path(args.dest), url=args.source or UCI_URL))
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
