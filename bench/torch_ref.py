#!/usr/bin/env python3
"""PyTorch references for bench/bench.py.

Subcommands, each mirroring one of ad-bench's:
  mlp     train the same 784-256-128-10 MLP on Fashion-MNIST, batch 64,
          SGD with momentum, for timed epochs that each restart from the
          same initial parameters
  scalar  record and differentiate the same chain of 0-d float64 operations

Run it with an interpreter that can import torch (Debian's python3-torch
installs it for /usr/bin/python3). Like ad-bench, it prints progress on
stderr and one line "RESULT {json}" on stdout, and --lockstep follows
ad-bench's protocol: "READY" after the warm-up runs, then for each line read
from stdin one timed run followed by "DONE <seconds>". The thread count comes from
--threads (torch.set_num_threads) and from the OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS variables that bench.py sets for the process.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
# Fashion-MNIST's pixel mean and standard deviation, as in bench/mlp.c.
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530
WARMUP_CHAIN_OPS = 100000


def peak_rss_bytes():
    """Return VmHWM of this process in bytes, or -1 when unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


class Lockstep:
    """The lockstep protocol of bench/bench_util.h; inactive when enabled is False."""

    def __init__(self, enabled):
        self.enabled = enabled

    def ready(self):
        if self.enabled:
            print("READY", flush=True)

    def wait(self):
        """Return False when stdin has ended, so no more runs are wanted."""
        return not self.enabled or sys.stdin.readline() != ""

    def done(self, seconds):
        if self.enabled:
            print(f"DONE {seconds:.9f}", flush=True)


def timed_runs(args, run, describe):
    """Call run() args.warmup times untimed, then up to args.repeats times
    timed; return the timed seconds."""
    lockstep = Lockstep(args.lockstep)
    seconds = []
    for index in range(args.warmup + args.repeats):
        if index == args.warmup:
            lockstep.ready()
        timed = index >= args.warmup
        if timed and not lockstep.wait():
            break
        start = time.perf_counter()
        outcome = run(timed)
        elapsed = time.perf_counter() - start
        if timed:
            seconds.append(elapsed)
            lockstep.done(elapsed)
        kind = "timed" if timed else "warm-up"
        print(f"torch {describe}: {kind} run {index + 1}: {elapsed:.4f} s, {outcome}",
              file=sys.stderr)
    return seconds


def open_idx(directory, name):
    for path in (os.path.join(directory, name), os.path.join(directory, name + ".gz")):
        if os.path.exists(path):
            return path, (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb"))
    sys.exit(f"torch_ref: {directory}/{name}(.gz) not found; install dataset-fashion-mnist "
             "or pass --data DIR")


def read_idx(directory, name, ndim, max_count):
    """Read up to max_count items of an IDX file of unsigned bytes into a
    uint8 tensor, without a second copy of the bytes."""
    path, f = open_idx(directory, name)
    with f:
        header = f.read(4 * (1 + ndim))
        magic, *dims = struct.unpack(">" + "I" * (1 + ndim), header)
        if magic != 0x800 | ndim:
            sys.exit(f"torch_ref: {path}: IDX magic number is {magic:#010x}; "
                     f"expected {0x800 | ndim:#010x}")
        count = min(dims[0], max_count) if max_count else dims[0]
        item = 1
        for d in dims[1:]:
            item *= d
        buffer = bytearray(count * item)
        if f.readinto(buffer) != len(buffer):
            sys.exit(f"torch_ref: {path}: file ends before item {count}")
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(count, item)


def make_model(seed):
    """Build the MLP with the initialisation of bench/mlp.c: Kaiming-uniform
    weights for ReLU, U(-sqrt(6 / in), sqrt(6 / in)), and zero biases."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            torch.nn.init.zeros_(layer.bias)
    return model


def train_epoch(model, initial, images, labels, batch, seed, lr, momentum):
    """Train one epoch from the initial parameters; return the mean loss."""
    model.load_state_dict(initial)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    scale = 1.0 / (255.0 * PIXEL_STD)
    shift = -PIXEL_MEAN / PIXEL_STD
    count = images.shape[0]
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    loss_sum = 0.0
    for start in range(0, count, batch):
        index = order[start:start + batch]
        x = images[index].float().mul_(scale).add_(shift)
        y = labels[index]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * index.shape[0]
    return loss_sum / count


def run_mlp(args):
    start = time.perf_counter()
    images = read_idx(args.data, "train-images-idx3-ubyte", 3, args.samples)
    labels = read_idx(args.data, "train-labels-idx1-ubyte", 1, args.samples).reshape(-1).long()
    load_seconds = time.perf_counter() - start
    model = make_model(args.seed)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    losses = []

    def epoch(timed):
        losses.append(train_epoch(model, initial, images, labels, args.batch, args.seed,
                                  args.lr, args.momentum))
        return f"mean loss {losses[-1]:.6f}"

    seconds = timed_runs(args, epoch, "mlp epoch")
    return {
        "benchmark": "torch_mlp",
        "samples": images.shape[0],
        "batch": args.batch,
        "seconds": seconds,
        "epoch_loss": losses[-1] if losses else None,
        "losses_identical": len(set(losses)) <= 1,
        "load_seconds": load_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def chain(ops):
    """Record the chain of bench_scalar.c and differentiate it; return dy/dx."""
    def leaf(value):
        return torch.tensor(value, dtype=torch.float64, requires_grad=True)
    x, a, b, c = leaf(0.5), leaf(2.0), leaf(0.25), leaf(0.5)
    y = x
    for _ in range(ops // 6):
        y = y * a
        y = y + b
        y = torch.exp(y)
        y = torch.log(y)
        y = y - b
        y = y * c
    steps = (lambda y: y * a, lambda y: y + b, torch.exp, torch.log, lambda y: y - b)
    for i in range(ops % 6):
        y = steps[i](y)
    y.backward()
    return y, x.grad.item()


def run_scalar(args):
    teardown, warmup = [], []
    derivative = []

    def run(timed):
        # Warm-up runs use a shorter chain: a run of 10^6 operations takes
        # about ten seconds, and nothing in it needs more to warm up.
        ops = args.ops if timed else min(args.ops, WARMUP_CHAIN_OPS)
        start = time.perf_counter()
        y, dy_dx = chain(ops)
        middle = time.perf_counter()
        del y  # frees the graph
        (teardown if timed else warmup).append(time.perf_counter() - middle)
        if timed:
            derivative.append(dy_dx)
        return f"{ops} ops, {ops / (middle - start):.3g} ops/s"

    seconds = timed_runs(args, run, "scalar chain")
    # The timed figure excludes the teardown that run() also measured.
    seconds = [s - t for s, t in zip(seconds, teardown)]
    return {
        "benchmark": "torch_scalar",
        "ops": args.ops,
        "dtype": "float64",
        "seconds": seconds,
        "teardown_seconds": teardown,
        "warmup_ops": min(args.ops, WARMUP_CHAIN_OPS),
        "dy_dx": derivative[-1] if derivative else None,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=["mlp", "scalar"])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads value")
    parser.add_argument("--data", default=DEFAULT_DATA, help="directory of the IDX files")
    parser.add_argument("--samples", type=int, default=0,
                        help="training samples per epoch; 0 means all")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs: epochs of the MLP, chains of the scalar benchmark")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones")
    parser.add_argument("--lockstep", action="store_true",
                        help="wait for a line on stdin before each timed run")
    parser.add_argument("--ops", type=int, default=1000000, help="operations in the scalar chain")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.9)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    result = run_mlp(args) if args.benchmark == "mlp" else run_scalar(args)
    result.update({
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
    })
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
