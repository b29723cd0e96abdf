/* example_util.c: options, folders and Graphviz rendering for the examples. */
#include "example_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

static void print_usage(const char *program, const char *summary) {
  printf("%s\n\nUsage: %s [--out DIR] [--data DIR] [--steps N] [--samples N]\n", summary, program);
  printf("  --out DIR      folder for the pictures and logs (default ./%s)\n", EXAMPLE_DEFAULT_OUT);
  printf("  --data DIR     folder with the gzipped Fashion-MNIST IDX files (default %s)\n",
         EXAMPLE_DEFAULT_DATA);
  printf("  --steps N      training steps, for the examples that train\n");
  printf("  --samples N    training images to use, for the examples that train\n");
}

static bool parse_count(const char *text, long *value) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || *end || end == text || v <= 0) return false;
  *value = v;
  return true;
}

bool example_parse_args(int argc, char **argv, const char *summary, example_options *options,
                        int *exit_code) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    bool ok = value != NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      print_usage(argv[0], summary);
      *exit_code = 0;
      return false;
    } else if (strcmp(arg, "--out") == 0 && value) {
      options->out_dir = value;
    } else if (strcmp(arg, "--data") == 0 && value) {
      options->data_dir = value;
    } else if (strcmp(arg, "--steps") == 0 && value) {
      ok = parse_count(value, &options->steps);
    } else if (strcmp(arg, "--samples") == 0 && value) {
      ok = parse_count(value, &options->samples);
      if (ok && options->samples < options->min_samples) {
        fprintf(stderr, "%s: --samples %ld is less than one batch of %ld images; pass "
                "--samples %ld or more\n", argv[0], options->samples, options->min_samples,
                options->min_samples);
        *exit_code = 2;
        return false;
      }
    } else {
      ok = false;
    }
    if (!ok) {
      fprintf(stderr, "%s: invalid argument '%s'%s; see --help\n", argv[0], arg,
              value ? "" : " (missing value?)");
      *exit_code = 2;
      return false;
    }
    i++;
  }
  return true;
}

bool example_make_dir(const char *path) {
  char buffer[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buffer) {
    fprintf(stderr, "invalid output folder '%s'\n", path);
    return false;
  }
  memcpy(buffer, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buffer[i] != '/' && buffer[i] != '\0') continue;
    char saved = buffer[i];
    buffer[i] = '\0';
    if (mkdir(buffer, 0777) != 0 && errno != EEXIST) {
      fprintf(stderr, "cannot create folder '%s': %s\n", buffer, strerror(errno));
      return false;
    }
    buffer[i] = saved;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "cannot use '%s' as the output folder: it exists and is not a folder\n",
            path);
    return false;
  }
  return true;
}

bool example_join(char *buffer, size_t capacity, const char *dir, const char *name) {
  int n = snprintf(buffer, capacity, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= capacity) {
    fprintf(stderr, "path too long: %s/%s\n", dir, name);
    return false;
  }
  return true;
}

bool example_have_dot(void) { return system("command -v dot >/dev/null 2>&1") == 0; }

/* Runs dot -T<format> on one file; paths are single-quoted for the shell. */
static bool run_dot(const char *format, const char *in, const char *out) {
  if (strchr(in, '\'') || strchr(out, '\'')) {
    fprintf(stderr, "cannot render '%s': the path contains a single quote\n", in);
    return false;
  }
  char command[8400];
  int n = snprintf(command, sizeof command, "dot -T%s%s '%s' -o '%s'", format,
                   strcmp(format, "png") == 0 ? " -Gdpi=144" : "", in, out);
  if (n < 0 || (size_t)n >= sizeof command) return false;
  if (system(command) != 0) {
    fprintf(stderr, "dot failed: %s\n", command);
    return false;
  }
  return true;
}

bool example_render_dot(const char *dot_path, const char *svg_path, const char *png_path) {
  return run_dot("svg", dot_path, svg_path) && run_dot("png", dot_path, png_path);
}

void example_print_dot_help(const char *out_dir) {
  printf("Graphviz's dot program was not found, so only the .dot files were written.\n"
         "Install it (Debian: apt-get install graphviz) and render them with\n"
         "  dot -Tsvg %s/FILE.dot -o %s/FILE.svg\n"
         "  dot -Tpng %s/FILE.dot -o %s/FILE.png\n"
         "or paste the text into any Graphviz viewer.\n",
         out_dir, out_dir, out_dir, out_dir);
}
