/* safetensors checkpoints: round trips, the file layout, corrupted,
   truncated and hand-written files, atomic saves, and resuming training. */
#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn.h"

static char dir[64];

static void make_dir(void) {
  strcpy(dir, "/tmp/nn-checkpoint-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
  char command[128];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
}

static const char *path_in_dir(const char *name) {
  static char path[4][256];
  static int slot;
  char *p = path[slot++ % 4];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

static unsigned char *read_whole(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static void write_whole(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  if (size) ck_assert_uint_eq(fwrite(data, 1, size, f), size);
  ck_assert_int_eq(fclose(f), 0);
}

/* Three tensors of every dtype, persistent, in a list. */
typedef struct fixture {
  ad_ctx *ctx;
  nn_tensor_list *list;
  ad_tensor *w, *steps, *scale;
} fixture;

static fixture fixture_new(void) {
  fixture f;
  f.ctx = ad_ctx_new(NULL);
  f.list = nn_tensor_list_new(f.ctx);
  const float wv[] = {1.5f, -2.25f, 3e-38f, 1e30f, -0.0f, 7};
  const int64_t sv[] = {3, -1};
  f.w = ad_persist(ad_from_f32(f.ctx, 2, (const int64_t[]){2, 3}, wv));
  f.steps = ad_persist(ad_from_i64(f.ctx, 1, (const int64_t[]){2}, sv));
  f.scale = ad_persist(ad_scalar(f.ctx, AD_F64, 0.1));
  ck_assert_int_eq(nn_tensor_list_add(f.list, "layer.weight", f.w), AD_OK);
  ck_assert_int_eq(nn_tensor_list_add(f.list, "optimizer.step", f.steps), AD_OK);
  ck_assert_int_eq(nn_tensor_list_add(f.list, "scale", f.scale), AD_OK);
  return f;
}

static void fixture_free(fixture *f) {
  nn_tensor_list_free(f->list);
  ad_ctx_free(f->ctx);
}

/* Overwrites every tensor of the fixture with a sentinel pattern. */
static void scribble(fixture *f) {
  for (int i = 0; i < 6; i++) ad_data_f32_mut(f->w)[i] = 99;
  ad_data_i64_mut(f->steps)[0] = ad_data_i64_mut(f->steps)[1] = 99;
  ad_data_f64_mut(f->scale)[0] = 99;
}

static bool is_scribbled(fixture *f) {
  for (int i = 0; i < 6; i++)
    if (ad_data_f32(f->w)[i] != 99) return false;
  return ad_data_i64(f->steps)[0] == 99 && ad_data_i64(f->steps)[1] == 99 &&
         ad_data_f64(f->scale)[0] == 99;
}

/* Byte copies of the fixture's tensors, for bitwise comparison. */
typedef struct snapshot {
  unsigned char w[24], steps[16], scale[8];
} snapshot;

static snapshot take_snapshot(fixture *f) {
  snapshot s;
  memcpy(s.w, ad_data_f32(f->w), 24);
  memcpy(s.steps, ad_data_i64(f->steps), 16);
  memcpy(s.scale, ad_data_f64(f->scale), 8);
  return s;
}

static bool snapshot_equal(fixture *f, const snapshot *s) {
  snapshot now = take_snapshot(f);
  return memcmp(&now, s, sizeof now) == 0;
}

START_TEST(test_round_trip_bitwise) {
  make_dir();
  fixture f = fixture_new();
  snapshot saved = take_snapshot(&f);
  const char *path = path_in_dir("model.safetensors");
  ck_assert_msg(nn_checkpoint_save(f.ctx, path, f.list) == AD_OK, "%s", ad_errmsg(f.ctx));
  scribble(&f);
  ck_assert_msg(nn_checkpoint_load(f.ctx, path, f.list) == AD_OK, "%s", ad_errmsg(f.ctx));
  ck_assert(snapshot_equal(&f, &saved));
  fixture_free(&f);
  remove_dir();
}
END_TEST

/* Saving only reads: a tape recorded before the save still differentiates. */
START_TEST(test_save_keeps_tape_valid) {
  make_dir();
  fixture f = fixture_new();
  ck_assert_int_eq(ad_set_requires_grad(f.w, true), AD_OK);
  ad_tensor *loss = ad_sum_all(f.ctx, ad_mul(f.ctx, f.w, f.w));
  ck_assert_ptr_nonnull(loss);
  const char *path = path_in_dir("during_step.safetensors");
  ck_assert_msg(nn_checkpoint_save(f.ctx, path, f.list) == AD_OK, "%s", ad_errmsg(f.ctx));
  ck_assert_msg(ad_backward(f.ctx, loss, NULL) == AD_OK, "%s", ad_errmsg(f.ctx));
  fixture_free(&f);
  remove_dir();
}
END_TEST

START_TEST(test_file_layout) {
  make_dir();
  fixture f = fixture_new();
  const char *path = path_in_dir("layout.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_OK);
  size_t size;
  unsigned char *bytes = read_whole(path, &size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
  ck_assert_uint_eq((8 + n) % 8, 0);
  ck_assert_uint_eq(size, 8 + n + 24 + 16 + 8);
  char *header = calloc(1, n + 1);
  memcpy(header, bytes + 8, n);
  ck_assert_int_eq(header[0], '{');
  ck_assert_ptr_nonnull(strstr(header, "\"__metadata__\":{\"format\":\"pt\",\"xxh3_64\":\""));
  ck_assert_ptr_nonnull(strstr(header, "\"layer.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                                       "\"data_offsets\":[0,24]}"));
  ck_assert_ptr_nonnull(strstr(header, "\"optimizer.step\":{\"dtype\":\"I64\",\"shape\":[2],"
                                       "\"data_offsets\":[24,40]}"));
  ck_assert_ptr_nonnull(strstr(header, "\"scale\":{\"dtype\":\"F64\",\"shape\":[],"
                                       "\"data_offsets\":[40,48]}"));
  /* The data section is little-endian: 1.5f is 00 00 c0 3f. */
  const unsigned char one_and_half[] = {0x00, 0x00, 0xc0, 0x3f};
  ck_assert_int_eq(memcmp(bytes + 8 + n, one_and_half, 4), 0);
  ck_assert_int_eq(bytes[8 + n + 24], 3);
  free(header);
  free(bytes);
  fixture_free(&f);
  remove_dir();
}
END_TEST

/* Flipping any one bit of the file either fails the load without changing
   a tensor, or loads the original values. Flips in the data section always
   fail, because of the checksum. */
START_TEST(test_flipped_bits_detected) {
  make_dir();
  fixture f = fixture_new();
  snapshot saved = take_snapshot(&f);
  const char *path = path_in_dir("good.safetensors");
  const char *bad = path_in_dir("flipped.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_OK);
  size_t size;
  unsigned char *bytes = read_whole(path, &size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | bytes[i];
  const unsigned char masks[] = {0x01, 0x20, 0x80};
  for (size_t pos = 0; pos < size; pos++) {
    for (int m = 0; m < 3; m++) {
      bytes[pos] ^= masks[m];
      write_whole(bad, bytes, size);
      bytes[pos] ^= masks[m];
      scribble(&f);
      ad_status status = nn_checkpoint_load(f.ctx, bad, f.list);
      if (status == AD_OK) {
        ck_assert_msg(snapshot_equal(&f, &saved), "byte %zu mask %02x loaded other values", pos,
                      masks[m]);
        ck_assert_msg(pos >= 8 && pos < 8 + n, "byte %zu outside the header was accepted", pos);
      } else {
        ck_assert_msg(is_scribbled(&f), "byte %zu mask %02x: a failed load changed a tensor",
                      pos, masks[m]);
        ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), bad));
      }
      if (pos >= 8 + n) {
        ck_assert_int_eq(status, AD_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), "corrupt"));
      }
      ad_clear_error(f.ctx);
    }
  }
  free(bytes);
  fixture_free(&f);
  remove_dir();
}
END_TEST

START_TEST(test_truncated_file_rejected) {
  make_dir();
  fixture f = fixture_new();
  const char *path = path_in_dir("good.safetensors");
  const char *cut = path_in_dir("cut.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_OK);
  size_t size;
  unsigned char *bytes = read_whole(path, &size);
  for (size_t len = 0; len < size; len++) {
    write_whole(cut, bytes, len);
    scribble(&f);
    ck_assert_msg(nn_checkpoint_load(f.ctx, cut, f.list) == AD_ERR_FORMAT,
                  "length %zu: %s", len, ad_errmsg(f.ctx));
    ck_assert(is_scribbled(&f));
    ad_clear_error(f.ctx);
  }
  /* Appended bytes are rejected too. */
  unsigned char *longer = malloc(size + 4);
  memcpy(longer, bytes, size);
  memset(longer + size, 0, 4);
  write_whole(cut, longer, size + 4);
  ck_assert_int_eq(nn_checkpoint_load(f.ctx, cut, f.list), AD_ERR_FORMAT);
  ck_assert(is_scribbled(&f));
  free(longer);
  free(bytes);
  fixture_free(&f);
  remove_dir();
}
END_TEST

START_TEST(test_tensor_set_mismatches) {
  make_dir();
  fixture f = fixture_new();
  const char *path = path_in_dir("set.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_OK);
  ad_ctx *ctx = f.ctx;

  /* A list without "scale": the file has an extra tensor. */
  nn_tensor_list *fewer = nn_tensor_list_new(ctx);
  nn_tensor_list_add(fewer, "layer.weight", f.w);
  nn_tensor_list_add(fewer, "optimizer.step", f.steps);
  scribble(&f);
  ck_assert_int_eq(nn_checkpoint_load(ctx, path, fewer), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "\"scale\", which is not in the list"));
  ck_assert(is_scribbled(&f));
  ad_clear_error(ctx);

  /* A list with one more tensor: the file lacks it. */
  ad_tensor *extra = ad_persist(ad_zeros(ctx, AD_F32, 1, (const int64_t[]){2}));
  nn_tensor_list_add(fewer, "scale", f.scale);
  nn_tensor_list_add(fewer, "bias", extra);
  ck_assert_int_eq(nn_checkpoint_load(ctx, path, fewer), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "lacks tensor \"bias\""));
  ck_assert(is_scribbled(&f));
  ad_clear_error(ctx);

  /* Same names, another shape, then another dtype. */
  nn_tensor_list *other = nn_tensor_list_new(ctx);
  ad_tensor *w32 = ad_persist(ad_zeros(ctx, AD_F32, 2, (const int64_t[]){3, 2}));
  nn_tensor_list_add(other, "layer.weight", w32);
  nn_tensor_list_add(other, "optimizer.step", f.steps);
  nn_tensor_list_add(other, "scale", f.scale);
  ck_assert_int_eq(nn_checkpoint_load(ctx, path, other), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "shape [2, 3] in the file but [3, 2] in memory"));
  ck_assert(is_scribbled(&f));
  ad_clear_error(ctx);
  ad_tensor *w64 = ad_persist(ad_zeros(ctx, AD_F64, 2, (const int64_t[]){2, 3}));
  other->items[0].tensor = w64;
  ck_assert_int_eq(nn_checkpoint_load(ctx, path, other), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "dtype F32 in the file but F64 in memory"));
  ck_assert(is_scribbled(&f));
  ad_clear_error(ctx);

  ck_assert_int_eq(nn_checkpoint_load(ctx, path_in_dir("missing"), f.list), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "missing"));
  nn_tensor_list_free(fewer);
  nn_tensor_list_free(other);
  fixture_free(&f);
  remove_dir();
}
END_TEST

/* ---- Hand-written files ---------------------------------------------- */

/* A header and the validity a strict reader gives it, for a list holding
   "a" (float32 [2]) and nothing else. */
typedef struct header_case {
  const char *header;
  bool valid;
} header_case;

static const header_case header_cases[] = {
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", true},
    {"  {\"a\" : {\"data_offsets\" : [0, 8], \"shape\" : [ 2 ], \"dtype\" : \"F32\"} }  ", true},
    {"{\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", true},
    {"{\"__metadata__\":{\"note\":\"\\ud83d\\ude00 caf\xc3\xa9\"},\"a\":{\"dtype\":\"F32\","
     "\"shape\":[2],\"data_offsets\":[0,8]}}", true},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[00,8]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", false},
    {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\","
     "\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"__metadata__\":{\"n\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     false},
    {"{\"__metadata__\":{\"xxh3_64\":\"zz\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}", false},
    {"{\"a\\q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", false},
    {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
     false},
    {"{\"a", false},
    {"", false},
    {"[]", false},
};

START_TEST(test_hand_written_headers) {
  make_dir();
  const header_case *c = &header_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  ad_tensor *a = ad_persist(ad_zeros(ctx, AD_F32, 1, (const int64_t[]){2}));
  nn_tensor_list_add(list, "a", a);
  size_t n = strlen(c->header);
  unsigned char *file = malloc(8 + n + 8);
  for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(file + 8, c->header, n);
  const float values[] = {2.5f, -1};
  memcpy(file + 8 + n, values, 8);
  const char *path = path_in_dir("hand.safetensors");
  write_whole(path, file, 8 + n + 8);
  ad_status status = nn_checkpoint_load(ctx, path, list);
  if (c->valid) {
    ck_assert_msg(status == AD_OK, "header %d rejected: %s", _i, ad_errmsg(ctx));
    ck_assert_float_eq(ad_data_f32(a)[0], 2.5f);
    ck_assert_float_eq(ad_data_f32(a)[1], -1);
  } else {
    ck_assert_msg(status == AD_ERR_FORMAT, "header %d: status %s", _i, ad_status_name(status));
    ck_assert_float_eq(ad_data_f32(a)[0], 0);
  }
  free(file);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

START_TEST(test_header_length_limits) {
  make_dir();
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  nn_tensor_list_add(list, "a", ad_persist(ad_zeros(ctx, AD_F32, 1, (const int64_t[]){2})));
  const uint64_t lengths[] = {UINT64_MAX, (uint64_t)1 << 40, 200000000, 9};
  for (int i = 0; i < 4; i++) {
    unsigned char file[16] = {0};
    for (int b = 0; b < 8; b++) file[b] = (unsigned char)(lengths[i] >> (8 * b));
    file[8] = '{';
    file[9] = '}';
    const char *path = path_in_dir("length.safetensors");
    write_whole(path, file, 16);
    ck_assert_int_eq(nn_checkpoint_load(ctx, path, list), AD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "declares a header"));
    ad_clear_error(ctx);
  }
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

START_TEST(test_names_escaped_round_trip) {
  make_dir();
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const char *names[] = {"quote\"back\\slash", "tab\tnewline\n", "caf\xc3\xa9.\xe2\x82\xac"};
  ad_tensor *t[3];
  for (int i = 0; i < 3; i++) {
    t[i] = ad_persist(ad_full(ctx, AD_F32, 1, (const int64_t[]){1}, i + 1));
    ck_assert_int_eq(nn_tensor_list_add(list, names[i], t[i]), AD_OK);
  }
  const char *path = path_in_dir("names.safetensors");
  ck_assert_msg(nn_checkpoint_save(ctx, path, list) == AD_OK, "%s", ad_errmsg(ctx));
  for (int i = 0; i < 3; i++) ad_data_f32_mut(t[i])[0] = 0;
  ck_assert_msg(nn_checkpoint_load(ctx, path, list) == AD_OK, "%s", ad_errmsg(ctx));
  for (int i = 0; i < 3; i++) ck_assert_float_eq(ad_data_f32(t[i])[0], (float)(i + 1));
  /* A name that is not UTF-8 is rejected before anything is written. */
  nn_tensor_list *bad = nn_tensor_list_new(ctx);
  nn_tensor_list_add(bad, "latin1 \xe9", t[0]);
  const char *bad_path = path_in_dir("bad.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(ctx, bad_path, bad), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "UTF-8"));
  ck_assert_int_ne(access(bad_path, F_OK), 0);
  nn_tensor_list_free(bad);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

/* ---- Atomic saves ---------------------------------------------------- */

static int count_entries(const char *path) {
  DIR *d = opendir(path);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

START_TEST(test_save_replaces_atomically) {
  make_dir();
  fixture f = fixture_new();
  const char *path = path_in_dir("ckpt.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_OK);
  ad_data_f32_mut(f.w)[0] = 42;
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_OK);
  ck_assert_int_eq(count_entries(dir), 1);
  snapshot second = take_snapshot(&f);
  scribble(&f);
  ck_assert_int_eq(nn_checkpoint_load(f.ctx, path, f.list), AD_OK);
  ck_assert(snapshot_equal(&f, &second));

  /* A target that is a directory is rejected before a temporary file is
     made, and the directory stays. */
  const char *target = path_in_dir("taken");
  ck_assert_int_eq(mkdir(target, 0700), 0);
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, target, f.list), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), target));
  ad_clear_error(f.ctx);
  ck_assert_int_eq(count_entries(dir), 2);
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, "/nonexistent-dir/x.safetensors", f.list),
                   AD_ERR_IO);
  ad_clear_error(f.ctx);
  nn_tensor_list *empty = nn_tensor_list_new(f.ctx);
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, empty), AD_ERR_ARGUMENT);
  nn_tensor_list_free(empty);
  fixture_free(&f);
  remove_dir();
}
END_TEST

/* A save never replaces a FIFO or a symbolic link: both stay as they were,
   the link's target keeps its contents, and no temporary file is left. */
START_TEST(test_save_rejects_special_targets) {
  make_dir();
  fixture f = fixture_new();
  const char *fifo = path_in_dir("fifo.safetensors");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *target = path_in_dir("target.safetensors");
  write_whole(target, "old", 3);
  const char *link = path_in_dir("link.safetensors");
  ck_assert_int_eq(symlink(target, link), 0);

  const struct {
    const char *path, *kind;
  } cases[] = {{fifo, "a FIFO"}, {link, "a symbolic link"}};
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(nn_checkpoint_save(f.ctx, cases[i].path, f.list), AD_ERR_IO);
    const char *message = ad_errmsg(f.ctx);
    ck_assert_msg(strstr(message, cases[i].path) != NULL, "message lacks the path: %s", message);
    ck_assert_msg(strstr(message, cases[i].kind) != NULL, "message lacks %s: %s", cases[i].kind,
                  message);
    ck_assert_msg(strstr(message, "not a regular file") != NULL, "%s", message);
    ad_clear_error(f.ctx);
    /* nn_checkpoint_check_path returns the same status without the tensors. */
    ck_assert_int_eq(nn_checkpoint_check_path(f.ctx, cases[i].path), AD_ERR_IO);
    ad_clear_error(f.ctx);
  }
  struct stat st;
  ck_assert_int_eq(lstat(fifo, &st), 0);
  ck_assert(S_ISFIFO(st.st_mode));
  ck_assert_int_eq(lstat(link, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  size_t size;
  unsigned char *bytes = read_whole(target, &size);
  ck_assert_uint_eq(size, 3);
  ck_assert_int_eq(memcmp(bytes, "old", 3), 0);
  free(bytes);
  ck_assert_int_eq(count_entries(dir), 3);
  fixture_free(&f);
  remove_dir();
}
END_TEST

START_TEST(test_check_path_cases) {
  make_dir();
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_int_eq(nn_checkpoint_check_path(ctx, path_in_dir("new.safetensors")), AD_OK);
  const char *existing = path_in_dir("existing.safetensors");
  write_whole(existing, "x", 1);
  ck_assert_int_eq(nn_checkpoint_check_path(ctx, existing), AD_OK);
  ck_assert_int_eq(count_entries(dir), 1);

  ck_assert_int_eq(nn_checkpoint_check_path(ctx, ""), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "empty"));
  ad_clear_error(ctx);
  const char *missing = path_in_dir("missing/x.safetensors");
  ck_assert_int_eq(nn_checkpoint_check_path(ctx, missing), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "create it first"));
  ad_clear_error(ctx);
  char below_file[300];
  snprintf(below_file, sizeof below_file, "%s/x.safetensors", existing);
  ck_assert_int_eq(nn_checkpoint_check_path(ctx, below_file), AD_ERR_IO);
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_checkpoint_check_path(ctx, dir), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "a directory, not a regular file"));
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_checkpoint_check_path(ctx, NULL), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

/* ---- Names and metadata ------------------------------------------------ */

/* "__metadata__" names the header's metadata object, so no tensor may have
   that name: a file with one could not be loaded. */
START_TEST(test_reserved_tensor_name_rejected) {
  make_dir();
  fixture f = fixture_new();
  ad_tensor *t = ad_persist(ad_zeros(f.ctx, AD_F32, 1, (const int64_t[]){2}));
  ck_assert_int_eq(nn_tensor_list_add(f.list, "__metadata__", t), AD_OK);
  const char *path = path_in_dir("reserved.safetensors");
  ck_assert_int_eq(nn_checkpoint_save(f.ctx, path, f.list), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), "\"__metadata__\""));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), "reserved by the safetensors format"));
  ck_assert_int_ne(access(path, F_OK), 0);
  ad_clear_error(f.ctx);
  ck_assert_int_eq(nn_checkpoint_load(f.ctx, path, f.list), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), "reserved by the safetensors format"));
  ad_tensor_free(t);
  fixture_free(&f);
  remove_dir();
}
END_TEST

START_TEST(test_metadata_round_trip) {
  make_dir();
  fixture f = fixture_new();
  nn_metadata written = {0};
  ck_assert_int_eq(nn_metadata_set(f.ctx, &written, "train.lr", "0.001"), AD_OK);
  ck_assert_int_eq(nn_metadata_set(f.ctx, &written, "note", "quote\" and caf\xc3\xa9"), AD_OK);
  ck_assert_int_eq(nn_metadata_set(f.ctx, &written, "train.lr", "0.01"), AD_OK);
  ck_assert_int_eq(written.count, 2);
  ck_assert_str_eq(nn_metadata_get(&written, "train.lr"), "0.01");
  ck_assert_ptr_null(nn_metadata_get(&written, "absent"));

  const char *path = path_in_dir("meta.safetensors");
  ck_assert_msg(nn_checkpoint_save_with_metadata(f.ctx, path, f.list, &written) == AD_OK, "%s",
                ad_errmsg(f.ctx));
  nn_metadata read = {0};
  ck_assert_msg(nn_checkpoint_read_metadata(f.ctx, path, &read) == AD_OK, "%s",
                ad_errmsg(f.ctx));
  ck_assert_int_eq(read.count, 4);
  ck_assert_str_eq(nn_metadata_get(&read, "format"), "pt");
  ck_assert_uint_eq(strlen(nn_metadata_get(&read, "xxh3_64")), 16);
  ck_assert_str_eq(nn_metadata_get(&read, "train.lr"), "0.01");
  ck_assert_str_eq(nn_metadata_get(&read, "note"), "quote\" and caf\xc3\xa9");
  /* The tensors still load from the file with metadata. */
  snapshot saved = take_snapshot(&f);
  scribble(&f);
  ck_assert_int_eq(nn_checkpoint_load(f.ctx, path, f.list), AD_OK);
  ck_assert(snapshot_equal(&f, &saved));
  fixture_free(&f);
  remove_dir();
}
END_TEST

START_TEST(test_metadata_rejects_invalid_entries) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_metadata m = {0};
  char long_key[NN_METADATA_KEY_MAX + 1], long_value[NN_METADATA_VALUE_MAX + 1];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  memset(long_value, 'v', sizeof long_value - 1);
  long_value[sizeof long_value - 1] = '\0';
  const struct {
    const char *key, *value, *message;
  } cases[] = {
      {"", "x", "empty"},
      {long_key, "x", "longer than 63 bytes"},
      {"k", long_value, "longer than 255 bytes"},
      {"k", "latin1 \xe9", "UTF-8"},
      {"format", "np", "reserved"},
      {"xxh3_64", "0000000000000000", "reserved"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ck_assert_int_eq(nn_metadata_set(ctx, &m, cases[i].key, cases[i].value), AD_ERR_ARGUMENT);
    ck_assert_msg(strstr(ad_errmsg(ctx), cases[i].message) != NULL, "case %zu: %s", i,
                  ad_errmsg(ctx));
    ck_assert_int_eq(m.count, 0);
    ad_clear_error(ctx);
  }
  for (int i = 0; i < NN_METADATA_MAX_ENTRIES; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    ck_assert_int_eq(nn_metadata_set(ctx, &m, key, "v"), AD_OK);
  }
  ck_assert_int_eq(nn_metadata_set(ctx, &m, "one-more", "v"), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "maximum is 32"));
  ad_clear_error(ctx);

  /* A set filled by hand is checked again by the save. */
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  nn_tensor_list_add(list, "a", ad_persist(ad_zeros(ctx, AD_F32, 1, (const int64_t[]){2})));
  nn_metadata twice = {.count = 2};
  strcpy(twice.entries[0].key, "k");
  strcpy(twice.entries[1].key, "k");
  make_dir();
  const char *path = path_in_dir("twice.safetensors");
  ck_assert_int_eq(nn_checkpoint_save_with_metadata(ctx, path, list, &twice), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "appears twice"));
  ck_assert_int_ne(access(path, F_OK), 0);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

/* Hand-written headers whose metadata nn_metadata cannot hold, or that are
   invalid, fail nn_checkpoint_read_metadata and leave the set unchanged. */
START_TEST(test_read_metadata_rejects_bad_headers) {
  make_dir();
  ad_ctx *ctx = ad_ctx_new(NULL);
  char many[2048] = "{\"__metadata__\":{";
  for (int i = 0; i <= NN_METADATA_MAX_ENTRIES; i++) {
    char entry[32];
    snprintf(entry, sizeof entry, "%s\"k%d\":\"v\"", i ? "," : "", i);
    strcat(many, entry);
  }
  strcat(many, "}}");
  const char *headers[] = {
      many,
      "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}",
      "{\"__metadata__\":{\"k\":1}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}",
      "{\"__metadata__\":{}",
  };
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    size_t n = strlen(headers[i]);
    unsigned char file[2100];
    for (int b = 0; b < 8; b++) file[b] = (unsigned char)((uint64_t)n >> (8 * b));
    memcpy(file + 8, headers[i], n);
    const char *path = path_in_dir("hand.safetensors");
    write_whole(path, file, 8 + n);
    nn_metadata m = {.count = 1};
    strcpy(m.entries[0].key, "kept");
    ck_assert_msg(nn_checkpoint_read_metadata(ctx, path, &m) == AD_ERR_FORMAT, "header %zu", i);
    ck_assert_int_eq(m.count, 1);
    ck_assert_str_eq(m.entries[0].key, "kept");
    ad_clear_error(ctx);
  }
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

/* A FIFO at the path fails at once instead of waiting for a writer; the
   case's timeout turns such a wait into a failure. */
START_TEST(test_load_rejects_fifo) {
  make_dir();
  fixture f = fixture_new();
  const char *fifo = path_in_dir("fifo.safetensors");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_int_eq(nn_checkpoint_load(f.ctx, fifo, f.list), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), "is a FIFO, not a regular file"));
  ad_clear_error(f.ctx);
  nn_metadata m = {0};
  ck_assert_int_eq(nn_checkpoint_read_metadata(f.ctx, fifo, &m), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(f.ctx), "not a regular file"));
  fixture_free(&f);
  remove_dir();
}
END_TEST

/* ---- Resuming training ------------------------------------------------ */

/* A 2-8-1 tanh network trained with Adam on a fixed regression batch. */
typedef struct small_run {
  ad_ctx *ctx;
  ad_rng rng;
  nn_layer *model;
  nn_tensor_list *params, *state;
  nn_optimizer *opt;
} small_run;

static small_run small_run_new(uint64_t seed) {
  small_run r;
  r.ctx = ad_ctx_new(NULL);
  ad_rng_seed(&r.rng, seed);
  r.model = nn_sequential(r.ctx);
  nn_sequential_add(r.model, nn_linear(r.ctx, 2, 8, NN_INIT_XAVIER_NORMAL, &r.rng));
  nn_sequential_add(r.model, nn_tanh(r.ctx));
  nn_sequential_add(r.model, nn_linear(r.ctx, 8, 1, NN_INIT_XAVIER_NORMAL, &r.rng));
  r.params = nn_tensor_list_new(r.ctx);
  r.state = nn_tensor_list_new(r.ctx);
  ck_assert_int_eq(nn_layer_collect_params(r.model, NULL, r.params), AD_OK);
  nn_optim_config config = nn_adam_config(0.01);
  config.weight_decay = 0.01;
  r.opt = nn_optimizer_new(r.ctx, r.params, &config);
  ck_assert_ptr_nonnull(r.opt);
  ck_assert_int_eq(nn_layer_collect_params(r.model, NULL, r.state), AD_OK);
  ck_assert_int_eq(nn_optimizer_collect_state(r.opt, "optimizer", r.state), AD_OK);
  return r;
}

static void small_run_steps(small_run *r, int steps) {
  const float xv[] = {0, 0, 0, 1, 1, 0, 1, 1, 0.5f, 0.5f}, yv[] = {0, 1, 1, 0, 0.3f};
  for (int s = 0; s < steps; s++) {
    ad_ctx_reset(r->ctx);
    ad_tensor *x = ad_from_f32(r->ctx, 2, (const int64_t[]){5, 2}, xv);
    ad_tensor *y = ad_from_f32(r->ctx, 2, (const int64_t[]){5, 1}, yv);
    ad_tensor *l = nn_mse_loss(r->ctx, nn_forward(r->ctx, r->model, x), y, AD_REDUCE_MEAN);
    nn_optimizer_zero_grad(r->opt);
    ck_assert_int_eq(ad_backward(r->ctx, l, NULL), AD_OK);
    ck_assert_int_eq(nn_optimizer_step(r->opt), AD_OK);
  }
}

static void small_run_free(small_run *r) {
  nn_optimizer_free(r->opt);
  nn_tensor_list_free(r->params);
  nn_tensor_list_free(r->state);
  nn_layer_free(r->model);
  ad_ctx_free(r->ctx);
}

START_TEST(test_resume_matches_straight_run) {
  make_dir();
  const char *path = path_in_dir("resume.safetensors");
  small_run straight = small_run_new(11);
  small_run_steps(&straight, 20);

  small_run first = small_run_new(11);
  small_run_steps(&first, 8);
  ck_assert_int_eq(nn_checkpoint_save(first.ctx, path, first.state), AD_OK);
  small_run_free(&first);

  /* Another seed: every value must come from the checkpoint. */
  small_run resumed = small_run_new(12345);
  ck_assert_msg(nn_checkpoint_load(resumed.ctx, path, resumed.state) == AD_OK, "%s",
                ad_errmsg(resumed.ctx));
  ck_assert_int_eq(nn_optimizer_steps(resumed.opt), 8);
  small_run_steps(&resumed, 12);

  ck_assert_int_eq(straight.params->count, resumed.params->count);
  for (int64_t i = 0; i < straight.params->count; i++) {
    ad_tensor *a = straight.params->items[i].tensor, *b = resumed.params->items[i].tensor;
    ck_assert_msg(memcmp(ad_data_f32(a), ad_data_f32(b), (size_t)ad_numel(a) * 4) == 0,
                  "parameter %s differs", straight.params->items[i].name);
  }
  small_run_free(&straight);
  small_run_free(&resumed);
  remove_dir();
}
END_TEST

static Suite *checkpoint_suite(void) {
  Suite *s = suite_create("nn_checkpoint");
  TCase *tc = tcase_create("round_trip");
  tcase_add_test(tc, test_round_trip_bitwise);
  tcase_add_test(tc, test_save_keeps_tape_valid);
  tcase_add_test(tc, test_file_layout);
  tcase_add_test(tc, test_names_escaped_round_trip);
  suite_add_tcase(s, tc);
  tc = tcase_create("damaged_files");
  tcase_add_test(tc, test_flipped_bits_detected);
  tcase_add_test(tc, test_truncated_file_rejected);
  tcase_add_test(tc, test_tensor_set_mismatches);
  tcase_add_loop_test(tc, test_hand_written_headers, 0,
                      (int)(sizeof header_cases / sizeof header_cases[0]));
  tcase_add_test(tc, test_header_length_limits);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tc = tcase_create("atomic_save");
  tcase_add_test(tc, test_save_replaces_atomically);
  tcase_add_test(tc, test_save_rejects_special_targets);
  tcase_add_test(tc, test_check_path_cases);
  tcase_add_test(tc, test_load_rejects_fifo);
  tcase_set_timeout(tc, 20);
  suite_add_tcase(s, tc);
  tc = tcase_create("names_and_metadata");
  tcase_add_test(tc, test_reserved_tensor_name_rejected);
  tcase_add_test(tc, test_metadata_round_trip);
  tcase_add_test(tc, test_metadata_rejects_invalid_entries);
  tcase_add_test(tc, test_read_metadata_rejects_bad_headers);
  suite_add_tcase(s, tc);
  tc = tcase_create("resume");
  tcase_add_test(tc, test_resume_matches_straight_run);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(checkpoint_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
