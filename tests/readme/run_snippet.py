#!/usr/bin/env python3
"""Compile and run a C program quoted in a README, and compare its output.

A README marks a program with the HTML comment `<!-- snippet: NAME -->`
on the line before a ```c block, and the output the program prints with
`<!-- output: NAME -->` before a ``` block. This script extracts both,
compiles the program against the libraries of this build, runs it, and
fails unless the output matches exactly, so the README cannot drift.

Usage: run_snippet.py README NAME CC FLAG... -- LIBRARY...
(FLAG: compiler flags such as -I directories and -fsanitize options)
"""
import os
import re
import subprocess
import sys
import tempfile


def block_after(text, marker, fence):
    """Return the body of the first fenced block after marker, or None."""
    pattern = re.escape(marker) + r"\s*\n```" + fence + r"\n(.*?)\n```"
    match = re.search(pattern, text, re.DOTALL)
    return match.group(1) + "\n" if match else None


def main(argv):
    if len(argv) < 5 or "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    readme, name, cc = argv[1], argv[2], argv[3]
    split = argv.index("--")
    flags, libraries = argv[4:split], argv[split + 1:]

    with open(readme, encoding="utf-8") as f:
        text = f.read()
    program = block_after(text, f"<!-- snippet: {name} -->", "c")
    expected = block_after(text, f"<!-- output: {name} -->", "")
    if program is None or expected is None:
        print(f"{readme}: snippet or output '{name}' not found", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, name + ".c")
        binary = os.path.join(tmp, name)
        with open(source, "w", encoding="utf-8") as f:
            f.write(program)
        command = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", source, "-o", binary]
        command += flags
        command += libraries + ["-lm"]
        command += ["-Wl,-rpath," + os.path.dirname(os.path.abspath(lib)) for lib in libraries]
        built = subprocess.run(command, capture_output=True, text=True)
        if built.returncode != 0:
            print("compiling the snippet failed:\n" + " ".join(command), file=sys.stderr)
            print(built.stderr, file=sys.stderr)
            return 1
        ran = subprocess.run([binary], capture_output=True, text=True, timeout=120)

    if ran.returncode != 0:
        print(f"the snippet exited with {ran.returncode}:\n{ran.stderr}", file=sys.stderr)
        return 1
    if ran.stdout != expected:
        print("output differs from the README.\nexpected:\n" + expected + "got:\n" + ran.stdout,
              file=sys.stderr)
        return 1
    print(f"{readme}: snippet '{name}' compiled, ran and printed the documented output")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
