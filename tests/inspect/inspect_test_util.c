/* inspect_test_util.c: helpers shared by the inspect test suites. */
#include "inspect_test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool text_capture_begin(text_capture *capture) {
  capture->text = NULL;
  capture->size = 0;
  capture->stream = open_memstream(&capture->text, &capture->size);
  return capture->stream != NULL;
}

void text_capture_end(text_capture *capture) {
  if (capture->stream) fclose(capture->stream);
  capture->stream = NULL;
}

void text_capture_free(text_capture *capture) {
  free(capture->text);
  capture->text = NULL;
}

int count_occurrences(const char *haystack, const char *needle) {
  int count = 0;
  size_t n = strlen(needle);
  for (const char *p = strstr(haystack, needle); p; p = strstr(p + n, needle)) count++;
  return count;
}

bool have_full_device(void) {
  struct stat st;
  return stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode);
}

FILE *open_full_device(void) { return have_full_device() ? fopen("/dev/full", "w") : NULL; }

bool have_program(const char *name) {
  char command[256];
  snprintf(command, sizeof command, "command -v %s >/dev/null 2>&1", name);
  return system(command) == 0;
}

bool temp_path(char *buffer, size_t capacity, const char *name) {
  static char dir[64];
  if (!dir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%.40s/inspect-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
      dir[0] = '\0';
      return false;
    }
  }
  int n = snprintf(buffer, capacity, "%s/%s", dir, name);
  return n > 0 && (size_t)n < capacity;
}

int run_test_table(const char *suite, const test_entry *cases, size_t count) {
  Suite *s = suite_create(suite);
  for (size_t i = 0; i < count; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_test(tc, cases[i].test);
    suite_add_tcase(s, tc);
  }
  SRunner *runner = srunner_create(s);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
