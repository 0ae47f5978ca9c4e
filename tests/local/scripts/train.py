"""Fixture training entry point: records the toolkit contract and reports a metric."""
import argparse
import json
import os
import pathlib
import signal
import socket
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--eta", type=float, default=0.1)
parser.add_argument("--mode", default="ok")  # ok | fail | failure-file | kill | network
parser.add_argument("--timeline", help="print start and end times, for a test to see which trials overlapped")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--reports", type=int, default=0)  # print the objective this many times first, rising to eta
parser.add_argument("--report_sleep", type=float, default=0.0)
args, unknown = parser.parse_known_args()

host = os.environ["SM_CURRENT_HOST"]
if args.timeline:
    print(f"timeline start {time.time()}", flush=True)
time.sleep(args.sleep)
for k in range(args.reports):
    print(f"validation:score={args.eta * (k + 1) / args.reports};", flush=True)
    time.sleep(args.report_sleep)
if args.mode == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if args.mode == "failure-file":
    pathlib.Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("bad training data")
    sys.exit(2)
if args.mode == "fail":
    print("about to fail")
    sys.exit(3)
if args.mode == "network":  # the first host listens at its name; the others reach it by name and say theirs
    hosts = json.loads(os.environ["SM_HOSTS"])
    if host == hosts[0]:
        with socket.create_server((socket.gethostbyname(host), 9099)) as server:
            heard = sorted(server.accept()[0].recv(64).decode() for _ in hosts[1:])
        print(f"heard {heard} at {socket.gethostbyname(host)}")
    else:
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection((hosts[0], 9099)) as peer:
                    peer.sendall(host.encode())
                break
            except ConnectionRefusedError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

config_dir = pathlib.Path(os.environ["SM_INPUT_CONFIG_DIR"])
channels = {
    name: sorted(p.name for p in pathlib.Path(os.environ[f"SM_CHANNEL_{name.upper()}"]).iterdir())
    for name in json.loads(os.environ["SM_CHANNELS"])
}
report = {
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "hyperparameters": json.loads((config_dir / "hyperparameters.json").read_text()),
    "resourceconfig": json.loads((config_dir / "resourceconfig.json").read_text()),
    "inputdataconfig": json.loads((config_dir / "inputdataconfig.json").read_text()),
    "channels": channels,
    "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_JOB"))},
}
model_dir = pathlib.Path(os.environ["SM_MODEL_DIR"])
(model_dir / f"report-{host}.json").write_text(json.dumps(report))
pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"], "extra.txt").write_text("extra")
if not args.reports:
    print("validation:score=0.0;")  # an early value: the last match must win
print(f"validation:score={args.eta};")
if args.timeline:
    print(f"timeline end {time.time()}", flush=True)
