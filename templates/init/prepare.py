"""Split the input CSV files into train, validation and test (60/20/20), each a CSV with a header.

Arguments: --label NAME --input DIR --output DIR [--seed N]. Writes <output>/<split>/<split>.csv.
"""
import argparse
from pathlib import Path

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--label", required=True)
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

files = sorted(args.input.rglob("*.csv"))
if not files:
    raise SystemExit(f"no CSV files under {args.input}")
frame = pd.concat([pd.read_csv(path) for path in files], ignore_index=True)
if args.label not in frame:
    raise SystemExit(f"no label column {args.label!r} in {args.input} (columns: {', '.join(frame)})")
shuffled = frame.sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
first, second = int(len(shuffled) * 0.6), int(len(shuffled) * 0.8)
for split, part in (("train", shuffled[:first]), ("validation", shuffled[first:second]), ("test", shuffled[second:])):
    (args.output / split).mkdir(parents=True, exist_ok=True)
    part.to_csv(args.output / split / f"{split}.csv", index=False)
    print(f"{split}: {len(part)} rows")
