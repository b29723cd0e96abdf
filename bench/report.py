"""The table and notes that bench.py prints, and the provenance above them."""

import json
import math
import os
import statistics
import subprocess

from harness import BenchError

MIB = 1024 * 1024

# The goals the engine is measured against.
GOAL_EPOCH_SECONDS = 0.5
GOAL_SPEEDUP_OVER_TORCH = 1.6
GOAL_PEAK_RSS_MIB = 100
GOAL_SCALAR_OPS_PER_SECOND = 50e6
GOAL_SCALAR_RATIO_OVER_TORCH = 500
GOAL_MATMUL_FRACTION = 0.90


class Samples:
    """The timed runs of one figure, with their median, minimum and maximum."""

    def __init__(self, values):
        values = [v for v in values if v is not None]
        if not values or not all(math.isfinite(v) and v >= 0 for v in values):
            raise BenchError(f"invalid timings {values}")
        self.values = values
        self.median = statistics.median(values)
        self.min = min(values)
        self.max = max(values)

    def rate(self, amount):
        """Return amount / t for each time t, such as operations per second."""
        return Samples([amount / v for v in self.values])


# ---- Formatting -------------------------------------------------------------


def fmt(value, unit=""):
    if value is None:
        return "n/a"
    if abs(value) >= 1e6:
        text = f"{value:.3g}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return text + unit


def fmt_samples(samples, unit=""):
    """Return "median [min–max]" with unit, or the value alone for one run."""
    if samples is None:
        return "n/a"
    if len(samples.values) == 1:
        return fmt(samples.median, unit)
    return f"{fmt(samples.median, unit)} [{fmt(samples.min)}–{fmt(samples.max)}]"


def fmt_speedup(ratio):
    return fmt(ratio, "× faster") if ratio >= 1 else fmt(ratio, "× (PyTorch faster)")


def print_table(header, rows):
    """Print a Markdown table with padded columns."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def verdict(met, judged=True):
    """Return the "met" cell: met is True, False, or None when it is unknown."""
    if not judged:
        return "not judged"
    if met is None:
        return "unknown"
    return "yes" if met else "no"


# ---- Provenance -------------------------------------------------------------


def machine_description():
    model, memory = "unknown CPU", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                    break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0))
    return f"{model}, {os.cpu_count()} CPUs, nproc {nproc}{memory}"


def cpu_pressure():
    """Return the share of the last minute in which some runnable task waited
    for a CPU (Linux pressure stall information), or None where unavailable."""
    try:
        with open("/proc/pressure/cpu") as f:
            fields = dict(item.split("=") for item in f.readline().split()[1:])
        return float(fields["avg60"])
    except (OSError, ValueError, KeyError):
        return None


def git_description(source_root, override):
    """Return HEAD's hash, naming the source folders with uncommitted changes."""
    if override:
        return override
    try:
        head = subprocess.run(["git", "-C", source_root, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", source_root, "status", "--porcelain", "--",
                                "autodiff", "nn", "bench", "meson.build", "meson_options.txt"],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout; pass --commit)"
    if dirty.strip():
        paths = sorted({line[3:].split("/")[0] for line in dirty.splitlines()})
        return f"{head} with uncommitted changes in {', '.join(paths)}"
    return head


def build_options(build_dir):
    """Return the build's buildtype, assertion, sanitizer and BLAS options."""
    path = os.path.join(build_dir, "meson-info", "intro-buildoptions.json")
    try:
        with open(path) as f:
            options = {o["name"]: o["value"] for o in json.load(f)}
    except (OSError, ValueError, KeyError):
        return "options unknown"
    names = ("buildtype", "b_ndebug", "b_sanitize", "blas")
    return ", ".join(f"{n}={options[n]}" for n in names if n in options)


# ---- Rows -------------------------------------------------------------------


def best_torch_config(results):
    """Return the PyTorch thread setting that was fastest in the search, or None."""
    return next((c for c in results.get("torch_mlp_configs", []) if c["best"]), None)


def mlp_rows(results, judged, no_torch):
    mlp = results["mlp"]["result"]
    epoch = Samples(mlp["seconds"])
    floor_result = results["floor"]["result"]
    floor = Samples(floor_result["seconds"]) if floor_result.get("available") else None
    best = best_torch_config(results)
    label = (f"MLP epoch ({mlp['samples']:,} samples, batch {mlp['batch']}, "
             f"{mlp['threads']} threads)")
    rows = [[
        label + ": time",
        fmt_samples(epoch, " s"),
        f"GEMM floor {fmt_samples(floor, ' s')}" if floor else "no CBLAS for a floor",
        fmt(epoch.median / floor.median, "× floor") if floor else "n/a",
        f"≤ {GOAL_EPOCH_SECONDS} s",
        verdict(epoch.median <= GOAL_EPOCH_SECONDS, judged),
    ]]
    if best:
        torch_epoch = Samples(best["result"]["seconds"])
        speedup = torch_epoch.median / epoch.median
        rows.append([
            label + ": vs PyTorch",
            fmt_samples(epoch, " s"),
            f"PyTorch {fmt_samples(torch_epoch, ' s')} with {best['label']}",
            fmt_speedup(speedup),
            f"≥ {GOAL_SPEEDUP_OVER_TORCH}× faster",
            verdict(speedup >= GOAL_SPEEDUP_OVER_TORCH, judged),
        ])
    else:
        rows.append([label + ": vs PyTorch", fmt_samples(epoch, " s"), no_torch, "n/a",
                     f"≥ {GOAL_SPEEDUP_OVER_TORCH}× faster", verdict(None, judged)])

    # VmHWM as each process read it at its end.
    rss = mlp["peak_rss_bytes"]
    torch_rss = best["result"]["peak_rss_bytes"] if best else None
    rows.append([
        "MLP training process: peak RSS",
        fmt(rss / MIB, " MiB"),
        f"PyTorch {fmt(torch_rss / MIB, ' MiB')}" if torch_rss else no_torch,
        fmt(torch_rss / rss, "× less") if torch_rss else "n/a",
        f"≤ {GOAL_PEAK_RSS_MIB} MiB",
        verdict(0 < rss <= GOAL_PEAK_RSS_MIB * MIB, judged),
    ])

    steps = mlp["steps_after_first"]
    per_step = mlp["allocs_after_first_step"] / steps if steps > 0 else None
    rows.append([
        f"MLP: allocator calls per step after the first ({steps:,} steps)",
        f"{fmt(per_step)} (max {mlp['max_allocs_in_step']} in one step; "
        f"first step {mlp['first_step_allocs']})",
        "—", "—", "0",
        verdict(steps > 0 and mlp["allocs_after_first_step"] == 0, judged),
    ])
    return rows


def scalar_rows(results, judged, no_torch):
    scalar = results["scalar"]["result"]
    rate = Samples(scalar["seconds"]).rate(scalar["ops"])
    torch_rate = None
    if "torch_scalar" in results:
        ts = results["torch_scalar"]["result"]
        torch_rate = Samples(ts["seconds"]).rate(ts["ops"])
    label = f"scalar chain ({scalar['ops']:,} 0-d float64 ops, forward + backward)"
    reference = f"PyTorch {fmt_samples(torch_rate, ' ops/s')}" if torch_rate else no_torch
    ratio = rate.median / torch_rate.median if torch_rate else None
    return [
        [label + ": rate", fmt_samples(rate, " ops/s"), reference, fmt(ratio, "×"),
         f"≥ {GOAL_SCALAR_OPS_PER_SECOND:.0e} ops/s",
         verdict(rate.median >= GOAL_SCALAR_OPS_PER_SECOND, judged)],
        [label + ": vs PyTorch", fmt_samples(rate, " ops/s"), reference, fmt(ratio, "×"),
         f"> {GOAL_SCALAR_RATIO_OVER_TORCH}× PyTorch",
         verdict(ratio > GOAL_SCALAR_RATIO_OVER_TORCH if ratio else None, judged)],
    ]


def matmul_row(results, judged):
    matmul = results["matmul"]["result"]
    goal = f"≥ {GOAL_MATMUL_FRACTION * 100:.0f}% of sgemm"
    if not matmul.get("available"):
        return ["matmul forward + backward", "built without a CBLAS", "n/a", "n/a", goal,
                verdict(None, judged)]
    gflop = matmul["flops"] / 1e9
    engine = Samples(matmul["engine_seconds"]).rate(gflop)
    direct = Samples(matmul["direct_seconds"]).rate(gflop)
    fraction = engine.median / direct.median
    n = matmul["size"]
    return [
        f"matmul {n}x{n} by {n}x{n} float32, forward + backward ({matmul['threads']} threads)",
        fmt_samples(engine, " GFLOP/s"),
        f"direct cblas_sgemm {fmt_samples(direct, ' GFLOP/s')}",
        f"{fraction * 100:.1f}%",
        goal,
        verdict(fraction >= GOAL_MATMUL_FRACTION, judged),
    ]


def determinism_row(results, judged):
    det = results["determinism"]["result"]
    if det["identical"]:
        outcome = "identical"
    else:
        losses = ("losses equal" if det["first_differing_step"] < 0 else
                  f"losses differ from step {det['first_differing_step'] + 1}")
        outcome = (f"differ: {losses}, {det['params_differing']:,} of "
                   f"{det['param_count']:,} parameters differ")
    return [f"MLP after {det['steps']} steps: 1 thread vs 2 threads", outcome, "—", "—",
            "bitwise identical", verdict(det["identical"], judged)]


def build_rows(results, judged, torch_note):
    return (mlp_rows(results, judged, torch_note) + scalar_rows(results, judged, torch_note)
            + [matmul_row(results, judged), determinism_row(results, judged)])


# ---- Notes ------------------------------------------------------------------


def print_mlp_notes(results):
    mlp = results["mlp"]["result"]
    epoch = Samples(mlp["seconds"])
    floor = results["floor"]["result"]
    best = best_torch_config(results)
    if best:
        torch_epoch = Samples(best["result"]["seconds"])
        floor_text = (f", GEMM floor {fmt(Samples(floor['seconds']).min, ' s')}"
                      if floor.get("available") else "")
        print(f"- fastest runs, the least disturbed by other work on the machine: engine "
              f"{fmt(epoch.min, ' s')}, PyTorch {fmt(torch_epoch.min, ' s')}{floor_text}. "
              f"PyTorch's minimum over the engine's is {fmt(torch_epoch.min / epoch.min, '×')}")

    print(f"- engine MLP epoch with 1 thread: "
          f"{fmt_samples(Samples(results['mlp_1']['result']['seconds']), ' s')}")
    print(f"- engine MLP epoch, 2 threads, step written on the engine API without nn "
          f"(ad_linear, ad_relu, ad_cross_entropy, float32 SGD loop): "
          f"{fmt_samples(Samples(results['mlp_engine']['result']['seconds']), ' s')}")
    print(f"- engine MLP: mean training loss over the epoch {mlp['epoch_loss']:.6f} on "
          f"{mlp['data']} data. Every epoch bitwise equal: "
          f"{'yes' if mlp['losses_identical'] else 'no'}")
    print(f"- engine MLP context: arena {fmt(mlp['arena_reserved_bytes'] / MIB, ' MiB')}, "
          f"allocator peak {fmt(mlp['allocator_peak_bytes'] / MIB, ' MiB')}. The process's "
          f"ru_maxrss from wait4 is {fmt(results['mlp']['rss'] / MIB, ' MiB')}, which includes "
          "the driver's pages that the child held between fork and exec")

    configs = results.get("torch_mlp_configs", [])
    if configs:
        print(f"- PyTorch MLP epoch by thread setting, run against each other in "
              f"{len(configs[0]['search_seconds'])} lockstep rounds before the comparison:")
    for config in configs:
        r = config["result"]
        print(f"  - {config['label']}: {fmt_samples(Samples(config['search_seconds']), ' s')}, "
              f"peak RSS {fmt(r['peak_rss_bytes'] / MIB, ' MiB')}, mean loss "
              f"{r['epoch_loss']:.6f}{' (fastest)' if config['best'] else ''}")


def print_scalar_notes(results):
    scalar = results["scalar"]["result"]
    warmups = ", ".join(fmt(s, " s") for s in scalar["warmup_seconds"]) or "none"
    print(f"- engine scalar chain: dy/dx = {scalar['dy_dx']}, arena "
          f"{scalar['arena_peak_bytes'] / scalar['ops']:.0f} bytes per op, ad_ctx_reset "
          f"after a run {fmt(max(scalar['reset_seconds']), ' s')} at most, warm-up runs "
          f"{warmups}")
    if "torch_scalar" in results:
        ts = results["torch_scalar"]["result"]
        print(f"- PyTorch scalar chain: dy/dx = {ts['dy_dx']}, freeing the graph "
              f"{fmt_samples(Samples(ts['teardown_seconds']), ' s')} (not timed), warm-up "
              f"chain of {ts['warmup_ops']:,} ops")


def print_notes(results):
    """Print the figures that no goal judges but that explain the table."""
    print("Other figures from the same run:")
    print_mlp_notes(results)
    print_scalar_notes(results)
