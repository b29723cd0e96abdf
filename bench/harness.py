"""Benchmark processes for bench.py: one-shot runs and lockstep groups.

Every benchmark program (ad-bench, torch_ref.py) ends by printing one line
"RESULT {json}" on stdout. In lockstep mode it also follows the protocol
described in bench_util.h: "READY" after its warm-up runs, then for each
line it reads from stdin one timed run followed by "DONE <seconds>".
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time


class BenchError(Exception):
    """A benchmark process failed, timed out or printed malformed output."""


def parse_result(label, stdout, stderr):
    """Return the object of the last RESULT line of stdout."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise BenchError(f"{label}: printed no RESULT line\n{stderr.strip()}")
    try:
        return json.loads(lines[-1][len("RESULT "):])
    except json.JSONDecodeError as error:
        raise BenchError(f"{label}: malformed RESULT line ({error}): {lines[-1]}") from error


def wait_with_timeout(proc, label, timeout):
    """Reap proc with wait4(); return its resource usage. Kills it after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage
        if time.monotonic() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise BenchError(f"{label}: timed out after {timeout} s and was killed")
        time.sleep(0.02)


def read_text(file):
    file.seek(0)
    return file.read().decode(errors="replace")


def run_child(command, label, timeout, env=None, verbose=False):
    """Run a benchmark to completion; return {"result": RESULT object,
    "rss": ru_maxrss in bytes}."""
    print(f"bench: {label}", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env)
        usage = wait_with_timeout(proc, label, timeout)
        stdout, stderr = read_text(out), read_text(err)
    if verbose:
        sys.stderr.write(stderr)
    if proc.returncode != 0:
        raise BenchError(f"{label}: exited with status {proc.returncode}: "
                         f"{' '.join(command)}\n{stderr.strip()}")
    return {"result": parse_result(label, stdout, stderr), "rss": usage.ru_maxrss * 1024}


class Contestant:
    """A benchmark process run in lockstep with others."""

    def __init__(self, key, label, command, env=None):
        self.key = key
        self.label = label
        self.command = command
        self.env = env
        self.proc = None
        self.stderr = None
        # The RESULT object of a benchmark that cannot run in this build
        # (for example a BLAS comparison without a CBLAS), or None.
        self.unavailable = None

    def start(self, timeout):
        """Start the process and wait until its warm-up runs are done. A
        process that replies with an unavailable RESULT instead is kept
        out of the rounds."""
        print(f"bench: starting {self.label}", file=sys.stderr, flush=True)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=self.env,
                                     text=True, bufsize=1)
        line = self.expect(("READY", "RESULT"), timeout)
        if line.startswith("RESULT"):
            result = json.loads(line[len("RESULT"):])
            if result.get("available", True):
                raise BenchError(f"{self.label}: sent a result before its runs: {line.strip()}")
            self.unavailable = result
            wait_with_timeout(self.proc, self.label, timeout)

    def expect(self, word, timeout):
        """Read one line from the process; fail unless it starts with word
        (a prefix, or a tuple of accepted prefixes)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise BenchError(f"{self.label}: no '{word}' within {timeout} s")
        line = self.proc.stdout.readline()
        if not line.startswith(word):
            raise BenchError(f"{self.label}: expected '{word}', got {line.strip()!r}; "
                             f"{' '.join(self.command)}\n{read_text(self.stderr).strip()}")
        return line

    def run_once(self, timeout):
        """Let the process do one timed run; return the seconds it reports."""
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self.expect("DONE", timeout).split()[1])

    def finish(self, timeout, verbose=False):
        """End the process; return {"result": RESULT object, "rss": ru_maxrss in bytes}."""
        self.proc.stdin.close()
        usage = wait_with_timeout(self.proc, self.label, timeout)
        stdout = self.proc.stdout.read()
        stderr = read_text(self.stderr)
        self.stderr.close()
        if verbose:
            sys.stderr.write(stderr)
        if self.proc.returncode != 0:
            raise BenchError(f"{self.label}: exited with status {self.proc.returncode}: "
                             f"{' '.join(self.command)}\n{stderr.strip()}")
        return {"result": parse_result(self.label, stdout, stderr),
                "rss": usage.ru_maxrss * 1024}

    def kill(self):
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()


def start_all(contestants, timeout):
    """Start the contestants one after the other, each through its warm-up
    runs, and return those that can run in this build."""
    for contestant in contestants:
        contestant.start(timeout)
    return [c for c in contestants if c.unavailable is None]


def run_rounds(contestants, rounds, timeout, settle):
    """Run rounds rounds in which each contestant does one timed run in turn,
    the order rotating by one each round. Between turns the harness sleeps
    settle seconds, so that BLAS, OpenMP and worker threads still spinning after a
    turn do not slow the next one. Returns {key: [seconds of each run]}."""
    seconds = {c.key: [] for c in contestants}
    for round_index in range(rounds):
        shift = round_index % len(contestants)
        for contestant in contestants[shift:] + contestants[:shift]:
            time.sleep(settle)
            value = contestant.run_once(timeout)
            seconds[contestant.key].append(value)
            print(f"bench: round {round_index + 1}: {contestant.label}: {value:.4g} s",
                  file=sys.stderr, flush=True)
    return seconds


def finish_all(contestants, timeout, verbose=False):
    """End the contestants; return {key: finish() of that contestant}."""
    return {c.key: c.finish(timeout, verbose) for c in contestants}


def kill_all(contestants):
    for contestant in contestants:
        contestant.kill()
