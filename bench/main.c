/*
 * main.c: ad-bench, one program with a subcommand per benchmark, so that
 * bench/bench.py can run each in a process of its own and read that
 * process's peak memory.
 */
#include <stdio.h>
#include <string.h>

#include "bench_util.h"

typedef struct subcommand {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"mlp", bench_mlp, "train the 784-256-128-10 MLP for timed epochs"},
    {"gemm-floor", bench_gemm_floor, "time the MLP epoch's sgemm calls alone"},
    {"determinism", bench_determinism, "compare MLP training with 1 and with 2 threads"},
    {"scalar", bench_scalar, "record and differentiate a chain of 0-d operations"},
    {"matmul", bench_matmul, "matmul forward and backward against direct sgemm calls"},
};

static void usage(FILE *stream) {
  fprintf(stream, "usage: ad-bench SUBCOMMAND [OPTIONS]\n\nsubcommands:\n");
  for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    fprintf(stream, "  %-12s %s\n", subcommands[i].name, subcommands[i].summary);
  fprintf(stream, "\nEach prints progress on stderr and one line \"RESULT {json}\" on stdout.\n"
          "bench/bench.py runs them all and prints the table.\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
    if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "ad-bench: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
