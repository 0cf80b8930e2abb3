/* test_aot_runtime.c - libkiln_rt's AOT side without LLVM: a hand-written model (a C entry
 * function and KnAotInfo) run with embedded weights and weights files good and bad, a failing
 * kernel, and .pb/.npy tensor files round trips and hostile ones. With a folder argument it reads
 * every DIR/X/test_data_set_0/.pb instead (ONNX's test data). Built with -DAOT_MAIN_MODEL it
 * is only the model, kn_aot_main_info() for runtime/main/aot_main.c. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln_aot.h"
#include "runtime/kiln_rt.h"

/* ---- the fake model: y[i,j] = x[i,j] * w[j] + b[0], staged through the arena ---------------- */

static const int64_t xy_dims[] = {2, 3};
static const KnAotTensorInfo fake_inputs[] = {{"x", xy_dims, 6, 24, KN_AOT_FLOAT, 2}};
static const KnAotTensorInfo fake_outputs[] = {{"y", xy_dims, 6, 24, KN_AOT_FLOAT, 2}};
static const float fake_w[3] = {1.0f, 2.0f, -3.0f}, fake_b[1] = {0.5f};
static const void *const fake_weights[] = {fake_w, fake_b};
static const uint64_t fake_weight_bytes[] = {12, 4};

/* Fails (as a generated kernel does on a bad index) when x[0] is negative. */
static int32_t fake_entry(void *ctx, void *const *inputs, void *const *outputs,
                          const void *const *weights, uint8_t *arena) {
  const float *x = inputs[0], *w = weights[0], *b = weights[1];
  float *tmp = (float *)arena, *y = outputs[0];
  if (x[0] < 0) return kn_rt_fail(ctx, KN_AOT_ERR_INVALID, "fake: index out of range", (int64_t)x[0]);
  for (int i = 0; i < 6; i++) tmp[i] = x[i] * w[i % 3];
  for (int i = 0; i < 6; i++) y[i] = tmp[i] + b[0];
  return 0;
}

static const KnAotInfo fake_info = {
    .abi_version = KN_AOT_ABI_VERSION, .name = "fake", .source = "fake.onnx", .target = "host",
    .cpu = "generic", .entry = fake_entry, .arena_bytes = 24, .inputs = fake_inputs,
    .outputs = fake_outputs, .weights = fake_weights, .weight_bytes = fake_weight_bytes,
    .n_weights = 2, .weights_digest = 0x1234abcd5678ef00ull, .n_inputs = 1, .n_outputs = 1};

#ifdef AOT_MAIN_MODEL
/* KN_FAKE_WEIGHTS_FILE set: the model's weights come from --weights. */
const KnAotInfo *kn_aot_main_info(void);
const KnAotInfo *kn_aot_main_info(void) {
  static KnAotInfo file_info;
  if (!getenv("KN_FAKE_WEIGHTS_FILE")) return &fake_info;
  file_info = fake_info;
  file_info.weights = NULL;
  return &file_info;
}
#else

#include "test_util.h"

static char work[256];

static const char *in_work(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", work, name);
  return path;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  if (n) fwrite(data, 1, n, f);
  fclose(f);
}

/* ---- running --------------------------------------------------------------------------------- */

static bool run_fake(KnAotModel *m, float x0) {
  float x[6] = {x0, 2, 3, 4, 5, 6}, y[6] = {0};
  const void *in[] = {x};
  void *out[] = {y};
  if (!CHECK_INT_EQ(kn_aot_run(m, in, out), KN_AOT_OK)) return false;
  bool ok = true;
  for (int i = 0; i < 6; i++) ok &= CHECK(y[i] == x[i] * fake_w[i % 3] + 0.5f);
  return ok;
}

static void test_embedded(void) {
  KnAotModel *m = NULL;
  CHECK_INT_EQ(kn_aot_create(&fake_info, "ignored.weights", &m), KN_AOT_OK);
  if (!CHECK(m != NULL)) return;
  CHECK(kn_aot_info(m) == &fake_info);
  run_fake(m, 1);
  kn_aot_set_threads(m, 0);
  run_fake(m, 7);
  kn_aot_set_threads(m, 2);
  run_fake(m, 0);
  kn_aot_destroy(m);
  kn_aot_destroy(NULL);
  CHECK(kn_aot_info(NULL) == NULL);
}

static void test_kernel_failure(void) {
  KnAotModel *m = NULL;
  CHECK_INT_EQ(kn_aot_create(&fake_info, NULL, &m), KN_AOT_OK);
  float x[6] = {-5}, y[6];
  const void *in[] = {x};
  void *out[] = {y};
  CHECK_INT_EQ(kn_aot_run(m, in, out), KN_AOT_ERR_INVALID);
  CHECK_CONTAINS(kn_aot_last_error(), "fake: index out of range (got -5)");
  run_fake(m, 1); /* the status is reset between runs */
  CHECK_INT_EQ(kn_aot_run(m, NULL, out), KN_AOT_ERR_INVALID);
  CHECK_INT_EQ(kn_aot_run(NULL, in, out), KN_AOT_ERR_INVALID);
  kn_aot_destroy(m);
}

static void test_bad_info(void) {
  KnAotInfo info = fake_info;
  KnAotModel *m = (KnAotModel *)&info;
  info.abi_version = 99;
  CHECK_INT_EQ(kn_aot_create(&info, NULL, &m), KN_AOT_ERR_UNSUPPORTED);
  CHECK(m == NULL);
  CHECK_CONTAINS(kn_aot_last_error(), "ABI version 99");
  CHECK_INT_EQ(kn_aot_create(NULL, NULL, &m), KN_AOT_ERR_INVALID);
  CHECK_INT_EQ(kn_aot_create(&fake_info, NULL, NULL), KN_AOT_ERR_INVALID);
  info = fake_info;
  info.arena_bytes = 0; /* still gets a (64-byte) arena */
  info.weights = NULL;
  info.n_weights = 0;
  CHECK_INT_EQ(kn_aot_create(&info, NULL, &m), KN_AOT_OK);
  kn_aot_destroy(m);
}

/* ---- weights files --------------------------------------------------------------------------- */

typedef struct WFile {
  uint8_t b[256];
  size_t size;
} WFile;

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A good file: header, table at 24, w at 64, b at 128. */
static WFile good_file(void) {
  WFile f = {.size = 132};
  memcpy(f.b, KN_AOT_WEIGHTS_MAGIC, 8);
  put64(f.b + 8, fake_info.weights_digest);
  put64(f.b + 16, 2);
  put64(f.b + 24, 64), put64(f.b + 32, 12), put64(f.b + 40, 128), put64(f.b + 48, 4);
  memcpy(f.b + 64, fake_w, 12);
  memcpy(f.b + 128, fake_b, 4);
  return f;
}

static int create_with(const WFile *f, KnAotModel **m) {
  static KnAotInfo info;
  info = fake_info;
  info.weights = NULL;
  write_bytes(in_work("model.weights"), f->b, f->size);
  return kn_aot_create(&info, in_work("model.weights"), m);
}

static void expect_bad(const WFile *f, int status, const char *msg, int line) {
  KnAotModel *m = (KnAotModel *)f;
  int rc = create_with(f, &m);
  tu_check(rc == status && m == NULL && strstr(kn_aot_last_error(), msg), __FILE__, line,
           "status %d (want %d), message \"%s\" (want \"%s\")", rc, status, kn_aot_last_error(), msg);
}

static void test_weights_file(void) {
  WFile f = good_file();
  KnAotModel *m = NULL;
  CHECK_INT_EQ(create_with(&f, &m), KN_AOT_OK);
  if (m) run_fake(m, 3);
  KnAotModel *m2 = NULL; /* a second instance maps the file again */
  CHECK_INT_EQ(create_with(&f, &m2), KN_AOT_OK);
  if (m2) run_fake(m2, 4);
  kn_aot_destroy(m);
  kn_aot_destroy(m2);

  WFile bad = f;
  bad.b[0] = 'X';
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "not a kiln weights file", __LINE__);
  bad = f, put64(bad.b + 8, 0xdeadbeefull);
  expect_bad(&bad, KN_AOT_ERR_INVALID, "weights file of another model (digest 0x00000000deadbeef, "
             "this model expects 0x1234abcd5678ef00)", __LINE__);
  bad = f, put64(bad.b + 16, 3);
  expect_bad(&bad, KN_AOT_ERR_INVALID, "holds 3 weights, this model expects 2", __LINE__);
  bad = f, put64(bad.b + 32, 16);
  expect_bad(&bad, KN_AOT_ERR_INVALID, "weight 0 has 16 bytes, this model expects 12", __LINE__);
  bad = f, bad.size = 130;
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "ends beyond the file's 130 bytes", __LINE__);
  bad = f, bad.size = 20;
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "truncated weights file (20 bytes", __LINE__);
  bad = f, bad.size = 40;
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "cannot hold the table", __LINE__);
  bad = f, put64(bad.b + 40, UINT64_MAX - 63);
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "weight 1", __LINE__);
  bad = f, put64(bad.b + 40, 4096);
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "ends beyond the file", __LINE__);
  bad = f, put64(bad.b + 40, 100);
  expect_bad(&bad, KN_AOT_ERR_FORMAT, "expected a multiple of 64", __LINE__);
  bad = f, put64(bad.b + 16, UINT64_MAX);
  expect_bad(&bad, KN_AOT_ERR_INVALID, "this model expects 2", __LINE__);

  KnAotInfo info = fake_info;
  info.weights = NULL;
  m = (KnAotModel *)&info;
  CHECK_INT_EQ(kn_aot_create(&info, in_work("missing.weights"), &m), KN_AOT_ERR_IO);
  CHECK_CONTAINS(kn_aot_last_error(), "missing.weights: cannot open the weights file");
  CHECK(m == NULL);
  CHECK_INT_EQ(kn_aot_create(&info, NULL, &m), KN_AOT_ERR_INVALID);
  CHECK_CONTAINS(kn_aot_last_error(), "weights file (kiln compile --weights) is required");
  CHECK_INT_EQ(kn_aot_create(&info, work, &m), KN_AOT_ERR_IO); /* a folder */
}

static void test_names(void) {
  CHECK_STR_EQ(kn_aot_status_name(KN_AOT_ERR_NOMEM), "nomem");
  CHECK_STR_EQ(kn_aot_status_name(42), "?");
  CHECK_STR_EQ(kn_aot_dtype_name(KN_AOT_BFLOAT16), "bfloat16");
  CHECK_STR_EQ(kn_aot_dtype_name(8), "?");
  CHECK_INT_EQ(kn_aot_dtype_size(KN_AOT_DOUBLE), 8);
  CHECK_INT_EQ(kn_aot_dtype_size(KN_AOT_BOOL), 1);
  CHECK_INT_EQ(kn_aot_dtype_size(8), 0);
}

/* ---- tensor files ------------------------------------------------------------------------------ */

static const int32_t all_dtypes[] = {KN_AOT_FLOAT,  KN_AOT_UINT8,   KN_AOT_INT8,   KN_AOT_UINT16,
                                     KN_AOT_INT16,  KN_AOT_INT32,   KN_AOT_INT64,  KN_AOT_BOOL,
                                     KN_AOT_FLOAT16, KN_AOT_DOUBLE, KN_AOT_UINT32, KN_AOT_UINT64,
                                     KN_AOT_BFLOAT16};

static bool same_tensor(const KnAotTensor *t, int32_t dtype, int rank, const int64_t *dims,
                        const void *data, size_t nbytes) {
  bool ok = t->dtype == dtype && t->rank == rank && t->nbytes == nbytes;
  for (int d = 0; ok && d < rank; d++) ok = t->dims[d] == dims[d];
  return ok && (!nbytes || memcmp(t->data, data, nbytes) == 0);
}

static void round_trip(const char *file, const char *name, int32_t dtype, int rank, const int64_t *dims) {
  uint8_t data[64];
  size_t esize = kn_aot_dtype_size(dtype), numel = 1;
  for (int d = 0; d < rank; d++) numel *= (size_t)dims[d];
  for (size_t i = 0; i < numel * esize; i++) data[i] = (uint8_t)(i * 37 + 11);
  if (dtype == KN_AOT_BOOL)
    for (size_t i = 0; i < numel; i++) data[i] &= 1;
  const char *path = in_work(file);
  int rc = kn_aot_write_tensor(path, name, dtype, rank, dims, data);
  if (!tu_check(rc == KN_AOT_OK, __FILE__, __LINE__, "writing %s as %s: %s", file,
                kn_aot_dtype_name(dtype), kn_aot_last_error()))
    return;
  KnAotTensor t;
  rc = kn_aot_read_tensor(path, &t);
  tu_check(rc == KN_AOT_OK && same_tensor(&t, dtype, rank, dims, data, numel * esize), __FILE__,
           __LINE__, "round trip of %s %s: rc %d %s", file, kn_aot_dtype_name(dtype), rc, kn_aot_last_error());
  if (rc == KN_AOT_OK && name && name[0]) CHECK_STR_EQ(t.name, name);
  else if (rc == KN_AOT_OK) CHECK(t.name == NULL);
  kn_aot_tensor_free(&t);
}

static void test_round_trips(void) {
  static const int64_t d23[] = {2, 3}, d5[] = {5}, d0[] = {0, 4};
  for (size_t i = 0; i < sizeof all_dtypes / sizeof *all_dtypes; i++) {
    int32_t dt = all_dtypes[i];
    round_trip("t.pb", "tensor_name", dt, 2, d23);
    round_trip("t.pb", NULL, dt, 0, NULL);
    round_trip("t.pb", "", dt, 2, d0);
    if (dt == KN_AOT_BFLOAT16) continue; /* numpy has no bfloat16 */
    round_trip("t.npy", NULL, dt, 2, d23);
    round_trip("t.npy", NULL, dt, 1, d5);
    round_trip("t.npy", NULL, dt, 0, NULL);
    round_trip("t.npy", NULL, dt, 2, d0);
  }
  CHECK_INT_EQ(kn_aot_write_tensor(in_work("bf.npy"), NULL, KN_AOT_BFLOAT16, 1, d5, "0123456789"),
               KN_AOT_ERR_UNSUPPORTED);
  CHECK(access(in_work("bf.npy"), F_OK) != 0);
  CHECK_INT_EQ(kn_aot_write_tensor(in_work("no/such/dir.pb"), NULL, KN_AOT_FLOAT, 1, d5, "01234567890123456789"),
               KN_AOT_ERR_IO);
  CHECK_INT_EQ(kn_aot_write_tensor(in_work("s.pb"), NULL, 8, 1, d5, "x"), KN_AOT_ERR_UNSUPPORTED);
  static const int64_t neg[] = {-1};
  CHECK_INT_EQ(kn_aot_write_tensor(in_work("n.pb"), NULL, KN_AOT_FLOAT, 1, neg, "x"), KN_AOT_ERR_FORMAT);
  CHECK_INT_EQ(kn_aot_write_tensor(in_work("n.pb"), NULL, KN_AOT_FLOAT, 1, d5, NULL), KN_AOT_ERR_INVALID);
}

/* ---- hand-written protobuf ------------------------------------------------------------------- */

typedef struct Buf {
  uint8_t b[1024];
  size_t n;
} Buf;

static void pv(Buf *b, uint64_t v) {
  for (; v >= 0x80; v >>= 7) b->b[b->n++] = (uint8_t)(v | 0x80);
  b->b[b->n++] = (uint8_t)v;
}
static void pkey(Buf *b, unsigned field, unsigned wire) { pv(b, field << 3 | wire); }
static void pbytes(Buf *b, unsigned field, const void *p, size_t n) {
  pkey(b, field, 2), pv(b, n), memcpy(b->b + b->n, p, n), b->n += n;
}
static void pvarint_field(Buf *b, unsigned field, uint64_t v) { pkey(b, field, 0), pv(b, v); }

/* Unknown fields of every wire type, which readers must skip. */
static void unknown_fields(Buf *b) {
  pvarint_field(b, 99, 12345);
  pkey(b, 100, 1), memset(b->b + b->n, 7, 8), b->n += 8;
  pbytes(b, 12, "a doc string", 12);
  pkey(b, 101, 5), memset(b->b + b->n, 7, 4), b->n += 4;
}

static int read_buf(const Buf *b, KnAotTensor *t) {
  write_bytes(in_work("h.pb"), b->b, b->n);
  return kn_aot_read_tensor(in_work("h.pb"), t);
}

static void expect_pb(const Buf *b, int32_t dtype, int rank, const int64_t *dims, const void *data,
                      size_t nbytes, int line) {
  KnAotTensor t;
  int rc = read_buf(b, &t);
  tu_check(rc == KN_AOT_OK && same_tensor(&t, dtype, rank, dims, data, nbytes), __FILE__, line,
           "typed %s tensor: rc %d %s", kn_aot_dtype_name(dtype), rc, kn_aot_last_error());
  kn_aot_tensor_free(&t);
}

static void expect_pb_error(const Buf *b, int status, const char *msg, int line) {
  KnAotTensor t;
  int rc = read_buf(b, &t);
  tu_check(rc == status && strstr(kn_aot_last_error(), msg) && !t.data && !t.dims, __FILE__, line,
           "status %d (want %d), message \"%s\" (want \"%s\")", rc, status, kn_aot_last_error(), msg);
  kn_aot_tensor_free(&t);
}

static void test_typed_fields(void) {
  Buf b = {0};
  static const int64_t d3[] = {3}, d23[] = {2, 3};
  float f[3] = {1.5f, -2, 3};
  unknown_fields(&b);
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_FLOAT), pbytes(&b, 4, f, 12);
  expect_pb(&b, KN_AOT_FLOAT, 1, d3, f, 12, __LINE__);

  b.n = 0; /* packed dims, int8 in int32_data as negative varints, split over two occurrences */
  uint8_t dims_packed[] = {2, 3}, vals[64];
  Buf v = {0};
  pv(&v, (uint64_t)(int64_t)-1), pv(&v, 2), pv(&v, (uint64_t)(int64_t)-128), pv(&v, 127);
  memcpy(vals, v.b, v.n);
  pbytes(&b, 1, dims_packed, 2), pvarint_field(&b, 2, KN_AOT_INT8), pbytes(&b, 5, vals, v.n);
  pvarint_field(&b, 5, 5), pvarint_field(&b, 5, 6);
  int8_t i8[6] = {-1, 2, -128, 127, 5, 6};
  expect_pb(&b, KN_AOT_INT8, 2, d23, i8, 6, __LINE__);

  b.n = 0; /* bool and float16 bit patterns in int32_data */
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_BOOL);
  pvarint_field(&b, 5, 0), pvarint_field(&b, 5, 1), pvarint_field(&b, 5, 1);
  uint8_t bools[3] = {0, 1, 1};
  expect_pb(&b, KN_AOT_BOOL, 1, d3, bools, 3, __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_FLOAT16);
  pvarint_field(&b, 5, 0x3c00), pvarint_field(&b, 5, 0xc000), pvarint_field(&b, 5, 0x7c00);
  uint16_t halves[3] = {0x3c00, 0xc000, 0x7c00};
  expect_pb(&b, KN_AOT_FLOAT16, 1, d3, halves, 6, __LINE__);

  b.n = 0; /* int64_data unpacked, a scalar */
  pvarint_field(&b, 2, KN_AOT_INT64), pvarint_field(&b, 7, (uint64_t)(int64_t)-42);
  int64_t i64 = -42;
  expect_pb(&b, KN_AOT_INT64, 0, NULL, &i64, 8, __LINE__);

  b.n = 0; /* double_data packed and unpacked; uint64_data holds uint32 */
  double dd[3] = {0.25, -1e300, 3};
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_DOUBLE), pbytes(&b, 10, dd, 16);
  pkey(&b, 10, 1), memcpy(b.b + b.n, &dd[2], 8), b.n += 8;
  expect_pb(&b, KN_AOT_DOUBLE, 1, d3, dd, 24, __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_UINT32);
  pvarint_field(&b, 11, 7), pvarint_field(&b, 11, 0xffffffffu), pvarint_field(&b, 11, 0);
  uint32_t u32[3] = {7, 0xffffffffu, 0};
  expect_pb(&b, KN_AOT_UINT32, 1, d3, u32, 12, __LINE__);
}

static void test_hostile_pb(void) {
  Buf b = {0};
  float f[3] = {1, 2, 3};
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_FLOAT), pbytes(&b, 8, "x", 1), pbytes(&b, 9, f, 12);
  Buf cut = b;
  for (size_t n = 0; n < b.n; n++) { /* every prefix: no crash, no leak, most fail */
    cut.n = n;
    KnAotTensor t;
    if (read_buf(&cut, &t) == KN_AOT_OK) CHECK(t.nbytes == 12 || t.nbytes == 0);
    kn_aot_tensor_free(&t);
  }
  cut.n = b.n - 1;
  expect_pb_error(&cut, KN_AOT_ERR_FORMAT, "truncated or corrupt protobuf", __LINE__);
  cut.n = 0;
  expect_pb_error(&cut, KN_AOT_ERR_FORMAT, "empty file", __LINE__);

  b.n = 0; /* raw_data of the wrong size */
  pvarint_field(&b, 1, 4), pvarint_field(&b, 2, KN_AOT_FLOAT), pbytes(&b, 9, f, 12);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "raw_data holds 12 bytes, the shape needs 16", __LINE__);
  b.n = 0; /* huge dims: overflow, and no overflow but no data (must not allocate it) */
  pvarint_field(&b, 1, 1ull << 62), pvarint_field(&b, 1, 1ull << 62), pvarint_field(&b, 2, KN_AOT_FLOAT);
  expect_pb_error(&b, KN_AOT_ERR_LIMIT, "overflows", __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 1ull << 45), pvarint_field(&b, 2, KN_AOT_FLOAT), pbytes(&b, 9, f, 12);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "raw_data holds 12 bytes", __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, (uint64_t)(int64_t)-2), pvarint_field(&b, 2, KN_AOT_FLOAT);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "negative dimension", __LINE__);
  b.n = 0;
  for (int i = 0; i < 33; i++) pvarint_field(&b, 1, 1);
  pvarint_field(&b, 2, KN_AOT_FLOAT);
  expect_pb_error(&b, KN_AOT_ERR_LIMIT, "more than 32 dims", __LINE__);
}

/* Values that do not match the dtype or shape, and what this runtime refuses. */
static void test_refused_pb(void) {
  Buf b = {0};
  float f[3] = {1, 2, 3};
  b.n = 0; /* typed values of the wrong count, in the wrong field */
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_FLOAT), pbytes(&b, 4, f, 8);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "holds 2 values, the shape needs 3", __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 1), pvarint_field(&b, 2, KN_AOT_FLOAT), pvarint_field(&b, 7, 1);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "field 7", __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 1), pvarint_field(&b, 2, KN_AOT_FLOAT), pbytes(&b, 4, f, 6);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "corrupt values in field 4", __LINE__);
  b.n = 0; /* external data, strings, no dtype, an unknown dtype, a group */
  pvarint_field(&b, 1, 3), pvarint_field(&b, 2, KN_AOT_FLOAT), pvarint_field(&b, 14, 1);
  expect_pb_error(&b, KN_AOT_ERR_UNSUPPORTED, "external data not supported", __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 1), pvarint_field(&b, 2, 8), pbytes(&b, 6, "hello", 5);
  expect_pb_error(&b, KN_AOT_ERR_UNSUPPORTED, "string tensors are not supported", __LINE__);
  b.n = 0;
  pvarint_field(&b, 1, 3), pbytes(&b, 9, f, 12);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "no data_type", __LINE__);
  b.n = 0;
  pvarint_field(&b, 2, 14), pbytes(&b, 9, f, 8);
  expect_pb_error(&b, KN_AOT_ERR_UNSUPPORTED, "data type 14 is not supported", __LINE__);
  b.n = 0;
  pvarint_field(&b, 2, KN_AOT_FLOAT), pkey(&b, 3, 3);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "corrupt protobuf at byte 2", __LINE__);
  b.n = 0;
  pvarint_field(&b, 2, KN_AOT_FLOAT), pkey(&b, 9, 2), pv(&b, 1ull << 40);
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "corrupt protobuf", __LINE__);
  b.n = 0;
  for (int i = 0; i < 11; i++) b.b[b.n++] = 0xff; /* a varint over 64 bits */
  expect_pb_error(&b, KN_AOT_ERR_FORMAT, "corrupt protobuf at byte 0", __LINE__);

  KnAotTensor t;
  CHECK_INT_EQ(kn_aot_read_tensor(in_work("missing.pb"), &t), KN_AOT_ERR_IO);
  CHECK_CONTAINS(kn_aot_last_error(), "missing.pb: cannot open");
  CHECK_INT_EQ(kn_aot_read_tensor(work, &t), KN_AOT_ERR_IO);
}

/* ---- hand-written .npy ------------------------------------------------------------------------ */

static void npy_file(Buf *b, int major, const char *dict, size_t data_bytes) {
  size_t pre = major == 1 ? 10 : 12, hl = strlen(dict);
  memcpy(b->b, "\x93NUMPY", 6);
  b->b[6] = (uint8_t)major, b->b[7] = 0;
  for (size_t i = 8; i < pre; i++) b->b[i] = (uint8_t)(hl >> (8 * (i - 8)));
  memcpy(b->b + pre, dict, hl);
  for (size_t i = 0; i < data_bytes; i++) b->b[pre + hl + i] = (uint8_t)(i + 1);
  b->n = pre + hl + data_bytes;
}

static int read_npy(const Buf *b, KnAotTensor *t) {
  write_bytes(in_work("h.npy"), b->b, b->n);
  return kn_aot_read_tensor(in_work("h.npy"), t);
}

static void expect_npy_error(const Buf *b, int status, const char *msg, int line) {
  KnAotTensor t;
  int rc = read_npy(b, &t);
  tu_check(rc == status && strstr(kn_aot_last_error(), msg) && !t.data, __FILE__, line,
           "status %d (want %d), message \"%s\" (want \"%s\")", rc, status, kn_aot_last_error(), msg);
  kn_aot_tensor_free(&t);
}

static void test_npy(void) {
  Buf b;
  KnAotTensor t;
  static const int64_t d23[] = {2, 3};
  for (int major = 1; major <= 3; major++) {
    npy_file(&b, major, "{\"descr\":'<i2', 'shape' : (2,3), 'fortran_order': False}\n", 12);
    CHECK_INT_EQ(read_npy(&b, &t), KN_AOT_OK);
    CHECK(t.dtype == KN_AOT_INT16 && t.rank == 2 && t.dims && t.dims[0] == 2 && t.dims[1] == 3 && t.nbytes == 12);
    kn_aot_tensor_free(&t);
  }
  npy_file(&b, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8);
  CHECK_INT_EQ(read_npy(&b, &t), KN_AOT_OK);
  CHECK(t.rank == 0 && t.nbytes == 8 && t.dtype == KN_AOT_DOUBLE);
  kn_aot_tensor_free(&t);
  npy_file(&b, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", 4);
  CHECK_INT_EQ(read_npy(&b, &t), KN_AOT_OK);
  CHECK(t.rank == 1 && t.nbytes == 4 && t.dtype == KN_AOT_BOOL && ((uint8_t *)t.data)[3] == 1);
  kn_aot_tensor_free(&t);
  (void)d23;

  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24);
  expect_npy_error(&b, KN_AOT_ERR_UNSUPPORTED, "Fortran-order .npy is not supported", __LINE__);
  npy_file(&b, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", 48);
  expect_npy_error(&b, KN_AOT_ERR_UNSUPPORTED, ".npy dtype '<c8' is not supported", __LINE__);
  npy_file(&b, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  expect_npy_error(&b, KN_AOT_ERR_UNSUPPORTED, "'>f4' is not supported", __LINE__);
  npy_file(&b, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8);
  expect_npy_error(&b, KN_AOT_ERR_UNSUPPORTED, "only plain numeric dtypes", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "holds 23 data bytes, its shape needs 24", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 4);
  expect_npy_error(&b, KN_AOT_ERR_LIMIT, "overflows", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4);
  expect_npy_error(&b, KN_AOT_ERR_LIMIT, "dimension overflows", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", 4);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "its shape needs", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "expected a dimension", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'shape': (1,), }", 4);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "lacks descr, fortran_order or shape", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'descr': '<f4', 'shape': (1,), }", 4);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "repeated key 'descr'", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "unexpected or repeated key 'x'", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", 0);
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, ".npy header", __LINE__);
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
  b.b[8] = 0xff; /* header length past the end */
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "runs past the file", __LINE__);
  b.b[8] = 10, b.b[6] = 4;
  expect_npy_error(&b, KN_AOT_ERR_UNSUPPORTED, ".npy version 4.0", __LINE__);
  b.n = 7;
  expect_npy_error(&b, KN_AOT_ERR_FORMAT, "not a .npy file", __LINE__);
  Buf cut; /* every prefix of a good file */
  npy_file(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  for (size_t n = 0; n < b.n; n++) {
    memcpy(cut.b, b.b, n), cut.n = n;
    CHECK(read_npy(&cut, &t) != KN_AOT_OK && !t.data);
  }
}

/* ---- ONNX test data ----------------------------------------------------------------------------- */

/* Reads DIR/NAME/test_data_set_0/{input,output}_K.pb; every file must parse consistently or
 * fail with a message that says why. */
static int read_onnx_data(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return fprintf(stderr, "%s: cannot open\n", dir), 1;
  int ok = 0, refused = 0, bad = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    for (int k = 0; e->d_name[0] != '.' && k < 16; k++) {
      char path[1024];
      snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s_%d.pb", dir, e->d_name, k < 8 ? "input" : "output", k % 8);
      if (access(path, R_OK) != 0) continue;
      KnAotTensor t;
      int rc = kn_aot_read_tensor(path, &t);
      size_t numel = 1;
      for (int i = 0; rc == KN_AOT_OK && i < t.rank; i++) numel *= (size_t)t.dims[i];
      if (rc == KN_AOT_OK && kn_aot_dtype_size(t.dtype) && t.nbytes == numel * kn_aot_dtype_size(t.dtype)) ok++;
      else if (rc != KN_AOT_OK && strstr(kn_aot_last_error(), path) && strlen(kn_aot_last_error()) > strlen(path) + 8)
        refused++, printf("refused %s\n", kn_aot_last_error());
      else bad++, printf("BAD %s: rc %d %s\n", path, rc, kn_aot_last_error());
      kn_aot_tensor_free(&t);
    }
  }
  closedir(d);
  printf("%d files read, %d refused with a message, %d bad\n", ok, refused, bad);
  return bad || ok == 0;
}

static void remove_work(void) {
  static const char *files[] = {"model.weights", "t.pb", "t.npy", "h.pb", "h.npy", "bf.npy", "n.pb", "s.pb"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(in_work(files[i]));
  DIR *d = opendir(work); /* anything else (a leftover temp file) fails the test */
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') tu_check(false, __FILE__, __LINE__, "left in the work folder: %s", e->d_name);
  if (d) closedir(d);
  rmdir(work);
}

int main(int argc, char **argv) {
  if (argc > 1) return read_onnx_data(argv[1]);
  snprintf(work, sizeof work, "/tmp/kiln_aot_test_%ld", (long)getpid());
  if (mkdir(work, 0700) != 0) return fprintf(stderr, "cannot create %s\n", work), 1;
  RUN_TEST(test_names);
  RUN_TEST(test_embedded);
  RUN_TEST(test_kernel_failure);
  RUN_TEST(test_bad_info);
  RUN_TEST(test_weights_file);
  RUN_TEST(test_round_trips);
  RUN_TEST(test_typed_fields);
  RUN_TEST(test_hostile_pb);
  RUN_TEST(test_refused_pb);
  RUN_TEST(test_npy);
  remove_work();
  return test_report();
}
#endif
