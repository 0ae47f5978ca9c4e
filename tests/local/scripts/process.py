"""Fixture processing script: reports what it sees, with every path taken from arguments."""
import argparse
import json
import os
import pathlib
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--config", required=True)
parser.add_argument("--message-file", required=True)
parser.add_argument("--message")
parser.add_argument("--exit-code", type=int, default=0)
args = parser.parse_args()

config = json.loads(pathlib.Path(args.config).read_text())
files = sorted(p.relative_to(args.input).as_posix() for p in pathlib.Path(args.input).rglob("*") if p.is_file())
out = pathlib.Path(args.output)
out.mkdir(parents=True, exist_ok=True)
report = {"host": config["current_host"], "hosts": config["hosts"], "files": files,
          "greeting": os.environ.get("GREETING"), "input": args.input}
(out / f"{config['current_host']}.json").write_text(json.dumps(report))
print(f"processed {len(files)} files on {config['current_host']}")
if args.message:
    pathlib.Path(args.message_file).write_text(args.message)
sys.exit(args.exit_code)
