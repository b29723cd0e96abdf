#!/usr/bin/env python3
"""Run the engine's benchmarks and their references, and print the table.

  python3 bench/bench.py --build build          # everything, 2 to 8 minutes
  python3 bench/bench.py --build build --quick  # tiny sizes, one run, no PyTorch

Every benchmark runs in a process of its own: ad-bench (built by meson in
BUILD/bench/) for the engine and the direct sgemm calls, torch_ref.py under an
interpreter that can import torch for PyTorch. Processes that are compared
with each other run in lockstep: all are started and warmed up, then each
does one timed run in turn, round after round, so that all of them see the
same background load. Each figure is the median of the timed runs, shown
with their minimum and maximum. Peak resident memory is VmHWM, which each
process reads from /proc/self/status at its end.

--quick checks that every benchmark runs and returns well-formed figures; it
judges no goal and needs no PyTorch. Both modes exit with status 0 whether or
not the goals are met, and with 1 when a benchmark fails to run.
"""

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys

import report
from harness import (BenchError, Contestant, finish_all, kill_all, run_child, run_rounds,
                     start_all)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

# PyTorch thread settings tried for the MLP, each in a process of its own:
# (label, torch.set_num_threads, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS).
TORCH_CONFIGS = [
    ("set_num_threads(1), OMP 1, OpenBLAS 1", 1, "1", "1"),
    ("set_num_threads(1), OMP 1, OpenBLAS 2", 1, "1", "2"),
    ("set_num_threads(2), OMP 2, OpenBLAS 1", 2, "2", "1"),
    ("set_num_threads(2), OMP 2, OpenBLAS 2", 2, "2", "2"),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build",
                        help="meson build directory holding bench/ad-bench (default: build)")
    parser.add_argument("--ad-bench", help="path of the ad-bench program (overrides --build)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one run each, no PyTorch; checks the harness only")

    # Sizes and run counts.
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs (rounds) of the MLP and matmul figures (default: 5)")
    parser.add_argument("--config-rounds", type=int, default=2,
                        help="rounds in which PyTorch's thread settings run against each "
                             "other before the fastest runs against the engine (default: 2)")
    parser.add_argument("--scalar-repeats", type=int, default=3,
                        help="timed runs of the scalar chain; one PyTorch run of 10^6 "
                             "operations takes about 10 s (default: 3)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs before the timed ones (default: 1)")
    parser.add_argument("--scalar-ops", type=int, default=1000000,
                        help="operations in the scalar chain (default: 1000000)")
    parser.add_argument("--matmul-size", type=int, default=1024,
                        help="matrix size of the matmul benchmark (default: 1024)")
    parser.add_argument("--determinism-steps", type=int, default=100,
                        help="training steps compared between 1 and 2 threads (default: 100)")

    # Inputs and the machine.
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help=f"directory of the Fashion-MNIST IDX files (default: {DEFAULT_DATA})")
    parser.add_argument("--torch-python", default="/usr/bin/python3",
                        help="interpreter that can import torch (default: /usr/bin/python3)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch references")
    parser.add_argument("--settle", type=float, default=0.2,
                        help="seconds of pause between lockstep turns (default: 0.2)")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds after which a benchmark process is killed (default: 900)")

    # Output.
    parser.add_argument("--commit", help="commit text for the report when not run in a checkout")
    parser.add_argument("--json", help="also write every raw figure to this file")
    parser.add_argument("--verbose", action="store_true",
                        help="show each process's progress output when it ends")
    args = parser.parse_args()
    counts = (args.repeats, args.config_rounds, args.scalar_repeats, args.scalar_ops,
              args.matmul_size, args.determinism_steps)
    if min(counts) < 1 or args.warmup < 0 or args.settle < 0:
        parser.error("counts and sizes must be at least 1; --warmup and --settle at least 0")
    return args


def data_arguments(args):
    """Return the data options for ad-bench; quick mode falls back to random data."""
    present = any(os.path.exists(os.path.join(args.data, "train-images-idx3-ubyte" + ext))
                  for ext in ("", ".gz"))
    if present:
        return ["--data", args.data]
    if args.quick:
        print(f"bench: {args.data} holds no Fashion-MNIST; quick mode uses random data",
              file=sys.stderr)
        return ["--synthetic"]
    raise BenchError(f"Fashion-MNIST not found in {args.data}; install Debian's "
                     "dataset-fashion-mnist or pass --data DIR")


def torch_version(python):
    """Return torch's version under python, or None when it cannot be imported."""
    try:
        done = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                              capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def torch_env(omp, openblas):
    return dict(os.environ, OMP_NUM_THREADS=omp, OPENBLAS_NUM_THREADS=openblas,
                MKL_NUM_THREADS=omp)


def engine_mlp_contestants(args, program, data_args, rounds):
    """Return the engine's side of the MLP comparison: the engine with 2 and
    1 threads, the engine without the nn module, and the GEMM floor."""
    quick = ["--samples", "256"] if args.quick else []
    runs = ["--epochs", str(rounds), "--warmup", str(args.warmup), "--lockstep"]
    return [
        Contestant("mlp", "engine MLP, 2 threads",
                   [program, "mlp", "--threads", "2"] + runs + quick + data_args),
        Contestant("mlp_1", "engine MLP, 1 thread",
                   [program, "mlp", "--threads", "1"] + runs + quick + data_args),
        Contestant("mlp_engine", "engine MLP, 2 threads, step without nn",
                   [program, "mlp", "--api", "engine", "--threads", "2"] + runs + quick
                   + data_args),
        Contestant("floor", "GEMM floor, 2 threads",
                   [program, "gemm-floor", "--threads", "2"] + runs + quick),
    ]


def torch_mlp_contestants(args, runs):
    """Return PyTorch's MLP processes, one per thread setting of TORCH_CONFIGS."""
    script = os.path.join(HERE, "torch_ref.py")
    group = []
    for index, (label, threads, omp, openblas) in enumerate(TORCH_CONFIGS):
        command = [args.torch_python, script, "mlp", "--threads", str(threads),
                   "--repeats", str(runs), "--warmup", str(args.warmup), "--lockstep",
                   "--data", args.data]
        group.append(Contestant(f"torch_mlp_{index}", f"PyTorch MLP, {label}", command,
                                torch_env(omp, openblas)))
    return group


def run_mlp(args, program, data_args, with_torch):
    """Run the MLP benchmarks in two lockstep phases. First the PyTorch
    thread settings run against each other; then the fastest of them, still
    warm, runs against the engine's processes. Returns the results, with
    "seconds" holding each process's comparison-phase runs."""
    rounds = 1 if args.quick else args.repeats
    engine = engine_mlp_contestants(args, program, data_args, rounds)
    candidates = torch_mlp_contestants(args, args.config_rounds + rounds) if with_torch else []
    results, search, best = {}, {}, None

    try:
        if candidates:
            start_all(candidates, args.timeout)
            search = run_rounds(candidates, args.config_rounds, args.timeout, args.settle)
            best = min(candidates, key=lambda c: statistics.median(search[c.key]))
            for contestant in candidates:
                if contestant is not best:
                    results[contestant.key] = contestant.finish(args.timeout, args.verbose)
        group = start_all(engine, args.timeout) + ([best] if best else [])
        compared = run_rounds(group, rounds, args.timeout, args.settle)
        results.update(finish_all(group, args.timeout, args.verbose))
        for contestant in engine:
            if contestant.unavailable is not None:
                results[contestant.key] = {"result": contestant.unavailable, "rss": 0}
    finally:
        kill_all(candidates + engine)

    for key, seconds in compared.items():
        results[key]["result"]["seconds"] = seconds
    if candidates:
        results["torch_mlp_configs"] = [
            {"label": TORCH_CONFIGS[index][0], "best": c is best,
             "search_seconds": search[c.key], **results.pop(c.key)}
            for index, c in enumerate(candidates)]
    return results


def run_scalar(args, program, with_torch):
    """Run the scalar chain of the engine and of PyTorch in lockstep."""
    ops = "1000" if args.quick else str(args.scalar_ops)
    rounds = 1 if args.quick else args.scalar_repeats
    # Two warm-up runs for the engine: the first touches fresh arena pages,
    # and the reset after it merges the arena into one new chunk.
    group = [Contestant("scalar", "engine scalar chain",
                        [program, "scalar", "--ops", ops, "--repeats", str(rounds),
                         "--warmup", str(max(args.warmup, 2)), "--lockstep"])]
    if with_torch:
        command = [args.torch_python, os.path.join(HERE, "torch_ref.py"), "scalar",
                   "--threads", "1", "--ops", ops, "--repeats", str(rounds),
                   "--warmup", str(max(args.warmup, 1)), "--lockstep"]
        group.append(Contestant("torch_scalar", "PyTorch scalar chain, 1 thread", command,
                                torch_env("1", "1")))
    try:
        start_all(group, args.timeout)
        run_rounds(group, rounds, args.timeout, args.settle)
        return finish_all(group, args.timeout, args.verbose)
    finally:
        kill_all(group)


def run_all(args, program, with_torch):
    """Run every benchmark; return {key: {"result": ..., "rss": ...}}."""
    data_args = data_arguments(args)
    results = run_mlp(args, program, data_args, with_torch)
    results.update(run_scalar(args, program, with_torch))
    if args.quick:
        matmul = ["--size", "64", "--repeats", "1", "--warmup", "0"]
        determinism = ["--steps", "3", "--samples", "256"]
    else:
        matmul = ["--size", str(args.matmul_size), "--repeats", str(args.repeats),
                  "--warmup", str(max(args.warmup, 2))]
        determinism = ["--steps", str(args.determinism_steps)]
    results["matmul"] = run_child([program, "matmul", "--threads", "2"] + matmul,
                                  "matmul, engine and direct sgemm alternating", args.timeout,
                                  verbose=args.verbose)
    results["determinism"] = run_child([program, "determinism"] + determinism + data_args,
                                       "determinism, 1 vs 2 threads", args.timeout,
                                       verbose=args.verbose)
    return results


def check_quick(results):
    """Return the problems found in the figures of a quick run."""
    problems = []
    for key in ("mlp", "mlp_1", "mlp_engine", "floor", "scalar"):
        if not results[key]["result"].get("available", True):
            continue  # a BLAS comparison in a build without a CBLAS
        try:
            report.Samples(results[key]["result"].get("seconds", []))
        except BenchError as error:
            problems.append(f"{key}: {error}")
    loss = results["mlp"]["result"].get("epoch_loss")
    if loss is None or not math.isfinite(loss):
        problems.append(f"the MLP's loss is not finite: {loss}")
    if results["scalar"]["result"].get("dy_dx") is None:
        problems.append("the scalar chain returned no derivative")
    matmul = results["matmul"]["result"]
    for key in ("engine_seconds", "direct_seconds") if matmul.get("available") else ():
        try:
            report.Samples(matmul.get(key, []))
        except BenchError as error:
            problems.append(f"matmul {key}: {error}")
    return problems


def main():
    args = parse_args()
    program = os.path.abspath(args.ad_bench or os.path.join(args.build, "bench", "ad-bench"))
    build_dir = os.path.dirname(os.path.dirname(program))
    if not os.access(program, os.X_OK):
        sys.exit(f"bench: {program} not found; build it first: meson setup {args.build} && "
                 f"meson compile -C {args.build}")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    pressure_before = report.cpu_pressure()

    version = None
    if args.quick:
        torch_state = "not run (--quick)"
    elif args.no_torch:
        torch_state = "not run (--no-torch)"
    else:
        version = torch_version(args.torch_python)
        torch_state = (f"{version} under {args.torch_python}" if version else
                       f"not available: {args.torch_python} cannot import torch, so the table "
                       "shows the engine's figures alone")
        if not version:
            print(f"bench: {torch_state}", file=sys.stderr)
    try:
        results = run_all(args, program, version is not None)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1

    mode = ("quick: tiny sizes, one run each, figures not judged" if args.quick else
            f"full: median [min–max] of {args.repeats} timed runs ({args.scalar_repeats} for "
            f"the scalar chain) after warm-up runs, lockstep rounds")
    provenance = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine_description(),
        "commit": report.git_description(SOURCE_ROOT, args.commit),
        "build": f"{build_dir} ({report.build_options(build_dir)})",
        "load average (1 min) before and after": f"{load_before:.2f}, {os.getloadavg()[0]:.2f}",
        "CPU pressure before (share of the last minute with a task waiting for a CPU)":
            "unavailable" if pressure_before is None else f"{pressure_before:.0f}%",
        "PyTorch": torch_state,
        "mode": mode,
    }
    for key, value in provenance.items():
        print(f"- {key}: {value}")
    print()
    no_torch = "PyTorch not run" if args.quick or args.no_torch else "PyTorch not available"
    try:
        rows = report.build_rows(results, not args.quick, no_torch)
    except (BenchError, KeyError, TypeError, ZeroDivisionError) as error:
        print(f"bench: the results are malformed: {error!r}", file=sys.stderr)
        return 1
    report.print_table(["benchmark", "this engine", "reference (same run)", "ratio", "goal",
                        "met"], rows)
    print()
    report.print_notes(results)
    sys.stdout.flush()

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"provenance": provenance, "results": results}, f, indent=1)
    if args.quick:
        problems = check_quick(results)
        for problem in problems:
            print(f"bench: quick check failed: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("quick mode: every benchmark ran and returned well-formed figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
