/*
 * example_util.h: command-line options, the output folder and Graphviz
 * rendering, shared by the inspect examples.
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* The folder every picture goes to unless --out names another. */
#define EXAMPLE_DEFAULT_OUT "inspect-output"
/* The folder of Debian's dataset-fashion-mnist package. */
#define EXAMPLE_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

typedef struct example_options {
  const char *out_dir;  /* --out DIR */
  const char *data_dir; /* --data DIR */
  long steps;           /* --steps N, or the example's default */
  long samples;         /* --samples N, or the example's default */
  long min_samples;     /* the smallest --samples accepted: one batch, or 0 */
} example_options;

/* Parses --out, --data, --steps and --samples into options, which contains the
   defaults and min_samples on entry. Prints usage and returns false on --help
   or an invalid argument, such as --samples below min_samples; *exit_code is
   then the program's exit status, 0 or 2. */
bool example_parse_args(int argc, char **argv, const char *summary, example_options *options,
                        int *exit_code);

/* Creates path and its missing parents, like mkdir -p. Prints the reason
   and returns false on failure, including when path exists and is not a
   folder. */
bool example_make_dir(const char *path);

/* Writes dir/name into buffer. Returns false when it does not fit. */
bool example_join(char *buffer, size_t capacity, const char *dir, const char *name);

/* True when Graphviz's dot program is on PATH. */
bool example_have_dot(void);

/* Renders dot_path into svg_path and png_path with dot. Prints what it did
   and returns false when dot failed. */
bool example_render_dot(const char *dot_path, const char *svg_path, const char *png_path);

/* Prints how to install Graphviz and render DOT files by hand. */
void example_print_dot_help(const char *out_dir);

#endif /* EXAMPLE_UTIL_H */
