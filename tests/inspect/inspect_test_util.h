/*
 * inspect_test_util.h: helpers shared by the inspect test suites.
 */
#ifndef INSPECT_TEST_UTIL_H
#define INSPECT_TEST_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* An in-memory stream: write to stream, then call text_capture_end and read
   text (NUL-terminated, freed by text_capture_free). */
typedef struct text_capture {
  FILE *stream;
  char *text;
  size_t size;
} text_capture;

bool text_capture_begin(text_capture *capture);
void text_capture_end(text_capture *capture);
void text_capture_free(text_capture *capture);

/* Counts the non-overlapping occurrences of needle in haystack. */
int count_occurrences(const char *haystack, const char *needle);

/* Opens /dev/full for writing when it is the character device that fails
   every write with ENOSPC; returns NULL otherwise, so a test never creates
   or replaces a file in /dev. */
FILE *open_full_device(void);

/* True when /dev/full is that character device. */
bool have_full_device(void);

/* True when a program is on PATH. */
bool have_program(const char *name);

/* Writes dir/name into buffer, where dir is a temporary folder that
   mkdtemp makes on the first call of the process. Returns false on failure. */
bool temp_path(char *buffer, size_t capacity, const char *name);

/* One named test of a suite table. */
typedef struct test_entry {
  const char *name;
  const TTest *test;
} test_entry;

/* Runs a suite of one test case per entry and returns the process exit
   status: EXIT_SUCCESS when every test passed. */
int run_test_table(const char *suite, const test_entry *cases, size_t count);

#endif /* INSPECT_TEST_UTIL_H */
