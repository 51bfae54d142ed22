/*
 * bridge.c drives libpersisting's C ABI from C, the way a foreign caller
 * (Python through ctypes, or any other language) does: it builds Arrow C Data
 * Interface structs by hand, hands them to persisting_append, reads rows back
 * through an ArrowArrayStream, waits on the eventfd, and checks every status
 * code, error message and release callback on the way.
 *
 * Usage: bridge DIR           every section
 *        bridge DIR poison    a panic poisons the library
 *        bridge DIR crash     log rows in a WAL bucket, then _exit
 *        bridge DIR recover   (after crash, same DIR) replay them
 * DIR is a scratch directory.
 *
 * Prints "ok <section>" per passed section and "PASS" at the end; every failed
 * check prints a "FAIL file:line: ..." line to stderr. Exit status 0 only when
 * nothing failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "libpersisting.h"

/* ---- Arrow C Data Interface, verbatim from the Arrow specification ---- */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  // Array type description
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;

  // Release callback
  void (*release)(struct ArrowSchema*);
  // Opaque producer-specific data
  void* private_data;
};

struct ArrowArray {
  // Array data description
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;

  // Release callback
  void (*release)(struct ArrowArray*);
  // Opaque producer-specific data
  void* private_data;
};

#endif  // ARROW_C_DATA_INTERFACE

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
  // Callbacks providing stream functionality
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);

  // Release callback
  void (*release)(struct ArrowArrayStream*);

  // Opaque producer-specific data
  void* private_data;
};

#endif  // ARROW_C_STREAM_INTERFACE

#include "persisting.h" /* the status codes */

/* ---- checks ---- */

static int failures;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
      failures++;                                                          \
    }                                                                      \
  } while (0)

/* REQUIRE stops the program: later checks would only cascade. */
#define REQUIRE(cond, ...)                                                 \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
      fprintf(stderr, "FAIL aborting after a fatal check\n");              \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

#define S(p) ((p) ? (p) : "(null)")

static void section_done(const char* name, int failures_before) {
  if (failures == failures_before) {
    printf("ok %s\n", name);
  } else {
    printf("failed %s\n", name);
  }
  fflush(stdout);
}

/* END_SECTION closes a test section: an error string still held here was
 * never freed (a successful call that set one, or a forgotten take). */
#define END_SECTION(name)                                                         \
  do {                                                                            \
    CHECK(err == NULL, "an error string was left unfreed: %s", S(err));          \
    take(&err);                                                                   \
    section_done(name, f0);                                                       \
  } while (0)

/* take frees a library-owned string after copying it into a static buffer,
 * so every char* the library returns goes back through persisting_free. */
static const char* take(char** p) {
  static char copy[4096];
  if (*p == NULL) return NULL;
  snprintf(copy, sizeof copy, "%s", *p);
  persisting_free(*p);
  *p = NULL;
  return copy;
}

/* ---- producer side: hand-built batches with counted release callbacks ---- */

/* Each batch is struct<id: int64 (or utf8), name: utf8>; index 0 is the
 * top-level struct, 1 the id child, 2 the name child. The counters live in
 * caller memory and outlive the release callbacks, so the test can assert that
 * the library released each struct exactly once. */
struct track {
  int schema_calls[3];
  int array_calls[3];
};

struct schema_priv {
  int* calls;
  char* format;
  char* name;
  struct ArrowSchema** children; /* pointer array, owned by the parent */
  struct ArrowSchema* child_structs;
};

struct array_priv {
  int* calls;
  void* bufs[3];
  size_t sizes[3];
  struct ArrowArray** children;
  struct ArrowArray* child_structs;
};

static void release_schema(struct ArrowSchema* s) {
  struct schema_priv* p = s->private_data;
  for (int64_t i = 0; i < s->n_children; i++) {
    if (s->children[i]->release != NULL) s->children[i]->release(s->children[i]);
  }
  (*p->calls)++;
  free(p->format);
  free(p->name);
  free(p->children);
  free(p->child_structs);
  free(p);
  s->release = NULL;
}

/* release_array scribbles over every buffer before freeing it: a consumer that
 * kept pointers into producer memory past the release reads garbage (and
 * valgrind reports it). */
static void release_array(struct ArrowArray* a) {
  struct array_priv* p = a->private_data;
  for (int64_t i = 0; i < a->n_children; i++) {
    if (a->children[i]->release != NULL) a->children[i]->release(a->children[i]);
  }
  (*p->calls)++;
  for (int i = 0; i < 3; i++) {
    if (p->bufs[i] != NULL) {
      memset(p->bufs[i], 0xA5, p->sizes[i]);
      free(p->bufs[i]);
    }
  }
  free(p->children);
  free(p->child_structs);
  free(p);
  a->release = NULL;
}

static void init_schema(struct ArrowSchema* s, const char* format, const char* name, int64_t flags,
                        int n_children, int* calls) {
  struct schema_priv* p = calloc(1, sizeof *p);
  p->calls = calls;
  p->format = strdup(format);
  p->name = strdup(name);
  if (n_children > 0) {
    p->children = calloc((size_t)n_children, sizeof *p->children);
    p->child_structs = calloc((size_t)n_children, sizeof *p->child_structs);
    for (int i = 0; i < n_children; i++) p->children[i] = &p->child_structs[i];
  }
  *s = (struct ArrowSchema){
      .format = p->format,
      .name = p->name,
      .metadata = NULL,
      .flags = flags,
      .n_children = n_children,
      .children = p->children,
      .dictionary = NULL,
      .release = release_schema,
      .private_data = p,
  };
}

static struct array_priv* init_array(struct ArrowArray* a, int64_t length, int64_t null_count,
                                     int64_t offset, int n_buffers, int n_children, int* calls) {
  struct array_priv* p = calloc(1, sizeof *p);
  p->calls = calls;
  if (n_children > 0) {
    p->children = calloc((size_t)n_children, sizeof *p->children);
    p->child_structs = calloc((size_t)n_children, sizeof *p->child_structs);
    for (int i = 0; i < n_children; i++) p->children[i] = &p->child_structs[i];
  }
  /* buffers points at the private bufs slots, so the pointer array lives
   * exactly as long as the struct does. */
  *a = (struct ArrowArray){
      .length = length,
      .null_count = null_count,
      .offset = offset,
      .n_buffers = n_buffers,
      .n_children = n_children,
      .buffers = (const void**)p->bufs,
      .children = p->children,
      .dictionary = NULL,
      .release = release_array,
      .private_data = p,
  };
  return p;
}

/* A row of the test table. name == NULL is a null name. */
struct row {
  int64_t id;
  int id_null;
  const char* name;
};

/* Global row i of the main data set. Nulls at rows 1 and 5 (name) and 4 (id);
 * row 7 has an empty, valid name. */
static struct row row_at(int64_t i) {
  static char names[64][16];
  struct row r = {.id = 1000 + i, .id_null = (i == 4), .name = NULL};
  if (i == 1 || i == 5) return r;
  if (i == 7) {
    r.name = "";
    return r;
  }
  snprintf(names[i % 64], sizeof names[0], "row-%" PRId64, i);
  r.name = names[i % 64];
  return r;
}

static void* xcalloc(size_t n) {
  void* p = calloc(1, n == 0 ? 1 : n);
  REQUIRE(p != NULL, "out of memory");
  return p;
}

/* fill_utf8 builds validity, offsets and data buffers for the strings of
 * rows[0..n) placed at slots [pad, pad+n); slots below pad hold junk that a
 * correct consumer skips through the array offset. */
static int64_t fill_utf8(struct array_priv* p, const char* const* strs, int n, int pad) {
  int total = n + pad;
  size_t data_len = 0;
  for (int i = 0; i < n; i++) data_len += strs[i] ? strlen(strs[i]) : 0;
  data_len += (size_t)pad * 4;
  uint8_t* validity = xcalloc((size_t)(total + 7) / 8);
  int32_t* offsets = xcalloc(sizeof(int32_t) * (size_t)(total + 1));
  char* data = xcalloc(data_len);
  int64_t nulls = 0;
  int32_t pos = 0;
  for (int slot = 0; slot < total; slot++) {
    offsets[slot] = pos;
    const char* s = slot < pad ? "junk" : strs[slot - pad];
    if (s == NULL) {
      nulls++;
      continue;
    }
    validity[slot / 8] |= (uint8_t)(1u << (slot % 8));
    memcpy(data + pos, s, strlen(s));
    pos += (int32_t)strlen(s);
  }
  offsets[total] = pos;
  p->bufs[0] = validity;
  p->sizes[0] = (size_t)(total + 7) / 8;
  p->bufs[1] = offsets;
  p->sizes[1] = sizeof(int32_t) * (size_t)(total + 1);
  p->bufs[2] = data;
  p->sizes[2] = data_len;
  return nulls;
}

/* make_batch exports rows[0..n) as a struct<id, name> batch. pad > 0 places
 * the child values at a non-zero offset; id_utf8 makes id a string column
 * (the schema-conflict case); unknown_nulls sets name's null_count to -1. */
static void make_batch(const struct row* rows, int n, int pad, int id_utf8, int unknown_nulls,
                       struct ArrowArray* arr, struct ArrowSchema* sch, struct track* t) {
  memset(t, 0, sizeof *t);

  init_schema(sch, "+s", "", 0, 2, &t->schema_calls[0]);
  init_schema(sch->children[0], id_utf8 ? "u" : "l", "id", ARROW_FLAG_NULLABLE, 0,
              &t->schema_calls[1]);
  init_schema(sch->children[1], "u", "name", ARROW_FLAG_NULLABLE, 0, &t->schema_calls[2]);

  init_array(arr, n, 0, 0, 1, 2, &t->array_calls[0]); /* no struct-level validity */

  const char* names[64];
  REQUIRE(n <= 64, "batch too large");
  for (int i = 0; i < n; i++) names[i] = rows[i].name;

  if (id_utf8) {
    const char* ids[64];
    static char idbuf[64][24];
    for (int i = 0; i < n; i++) {
      snprintf(idbuf[i], sizeof idbuf[i], "%" PRId64, rows[i].id);
      ids[i] = rows[i].id_null ? NULL : idbuf[i];
    }
    struct array_priv* p = init_array(arr->children[0], n, 0, pad, 3, 0, &t->array_calls[1]);
    arr->children[0]->null_count = fill_utf8(p, ids, n, pad);
  } else {
    int total = n + pad;
    int64_t nulls = 0;
    for (int i = 0; i < n; i++) nulls += rows[i].id_null;
    struct array_priv* p = init_array(arr->children[0], n, nulls, pad, 2, 0, &t->array_calls[1]);
    int64_t* values = xcalloc(sizeof(int64_t) * (size_t)total);
    for (int slot = 0; slot < pad; slot++) values[slot] = -777;
    for (int i = 0; i < n; i++) values[pad + i] = rows[i].id_null ? -1 : rows[i].id;
    p->bufs[1] = values;
    p->sizes[1] = sizeof(int64_t) * (size_t)total;
    /* Without nulls the validity buffer stays NULL, as the spec allows. */
    if (nulls > 0) {
      uint8_t* validity = xcalloc((size_t)(total + 7) / 8);
      for (int slot = 0; slot < pad; slot++) validity[slot / 8] |= (uint8_t)(1u << (slot % 8));
      for (int i = 0; i < n; i++) {
        if (!rows[i].id_null) validity[(pad + i) / 8] |= (uint8_t)(1u << ((pad + i) % 8));
      }
      p->bufs[0] = validity;
      p->sizes[0] = (size_t)(total + 7) / 8;
    }
  }

  struct array_priv* p = init_array(arr->children[1], n, 0, pad, 3, 0, &t->array_calls[2]);
  int64_t nulls = fill_utf8(p, names, n, pad);
  arr->children[1]->null_count = unknown_nulls ? -1 : nulls;
}

/* expect_released_once checks that every struct of a batch was released
 * exactly once and that the caller's own structs are marked released. */
static void expect_released_once(const char* what, struct ArrowArray* arr, struct ArrowSchema* sch,
                                 const struct track* t) {
  static const char* part[3] = {"struct", "id", "name"};
  for (int i = 0; i < 3; i++) {
    CHECK(t->schema_calls[i] == 1, "%s: schema %s released %d times", what, part[i],
          t->schema_calls[i]);
    CHECK(t->array_calls[i] == 1, "%s: array %s released %d times", what, part[i],
          t->array_calls[i]);
  }
  CHECK(arr->release == NULL, "%s: caller's ArrowArray not marked released", what);
  CHECK(sch->release == NULL, "%s: caller's ArrowSchema not marked released", what);
}

/* ---- completions ---- */

/* Completions seen while waiting for another token, per handle. Used from
 * the main thread only. */
struct completion {
  uintptr_t h;
  uint64_t token;
  int32_t status;
  int64_t first;
};
static struct completion stash[256];
static int n_stash;

static uint64_t new_token(void) {
  static uint64_t next = 1000;
  return __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
}

/* drain_eventfd resets the (non-blocking) eventfd counter. */
static void drain_eventfd(int fd) {
  uint64_t count;
  while (read(fd, &count, sizeof count) == (ssize_t)sizeof count) {
  }
}

/* wait_token waits up to 30 s for the completion of token on hh, sleeping
 * on its eventfd, and stashes completions of other tokens. */
static int wait_token(uintptr_t hh, uint64_t token, struct completion* out) {
  int fd = persisting_event_fd(hh);
  CHECK(fd >= 0, "event fd %d", fd);
  if (fd < 0) return 0;
  for (int waited_ms = 0; waited_ms < 30000;) {
    for (int i = 0; i < n_stash; i++) {
      if (stash[i].h == hh && stash[i].token == token) {
        *out = stash[i];
        stash[i] = stash[--n_stash];
        return 1;
      }
    }
    uint64_t t[16];
    int32_t st[16];
    int64_t f[16];
    int n = persisting_poll(hh, t, st, f, 16);
    CHECK(n >= 0 && n <= 16, "poll returned %d", n);
    if (n < 0) return 0;
    for (int i = 0; i < n; i++) {
      REQUIRE(n_stash < (int)(sizeof stash / sizeof stash[0]), "completion stash full");
      stash[n_stash++] = (struct completion){.h = hh, .token = t[i], .status = st[i], .first = f[i]};
    }
    if (n > 0) continue;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 100) == 1) {
      drain_eventfd(fd);
    } else {
      waited_ms += 100;
    }
  }
  CHECK(0, "no completion for token %" PRIu64 " within 30 s", token);
  return 0;
}

/* wait_ready waits for the end of recovery (the completion with token 0)
 * and returns the row count it reports. */
static int64_t wait_ready(uintptr_t hh) {
  struct completion c;
  if (!wait_token(hh, 0, &c)) return -1;
  CHECK(c.status == PERSISTING_OK, "recovery failed: status %d", c.status);
  if (c.status != PERSISTING_OK) {
    char* msg = persisting_take_error(hh, 0);
    fprintf(stderr, "recovery error: %s\n", S(msg));
    persisting_free(msg);
  }
  return c.first;
}

/* append_batch appends a batch and, when the library answers PENDING, waits
 * for its completion: either way it returns the final status and *first. */
static int32_t append_batch(uintptr_t hh, struct ArrowArray* arr, struct ArrowSchema* sch,
                            int64_t* first, char** err) {
  uint64_t token = new_token();
  int32_t rc = persisting_append(hh, arr, sch, token, first, err);
  if (rc != PERSISTING_PENDING) return rc;
  struct completion c;
  if (!wait_token(hh, token, &c)) return PERSISTING_ERROR;
  if (c.status != PERSISTING_OK) *err = persisting_take_error(hh, token);
  else *first = c.first;
  return c.status;
}

/* append_rows appends global rows [from, from+n) as one batch. */
static int32_t append_rows(uintptr_t h, int64_t from, int n, int pad, int unknown_nulls,
                           int64_t* first, char** err) {
  struct row rows[64];
  for (int i = 0; i < n; i++) rows[i] = row_at(from + i);
  struct ArrowArray arr;
  struct ArrowSchema sch;
  struct track t;
  make_batch(rows, n, pad, 0, unknown_nulls, &arr, &sch, &t);
  int32_t rc = append_batch(h, &arr, &sch, first, err);
  char what[64];
  snprintf(what, sizeof what, "append rows %" PRId64 "..%" PRId64, from, from + n - 1);
  expect_released_once(what, &arr, &sch, &t);
  return rc;
}

/* ---- consumer side: reading an ArrowArrayStream ---- */

#define MAX_ROWS 256

struct read_result {
  int64_t nrows;
  int nbatches;
  int64_t n_fields;
  int64_t ids[MAX_ROWS];
  int id_valid[MAX_ROWS];
  char names[MAX_ROWS][32];
  int name_valid[MAX_ROWS];
};

static int bit(const void* bitmap, int64_t i) {
  return bitmap == NULL || (((const uint8_t*)bitmap)[i / 8] >> (i % 8)) & 1;
}

static void decode_batch(const struct ArrowArray* arr, struct read_result* r) {
  CHECK(arr->n_children == 2, "batch has %" PRId64 " children", arr->n_children);
  if (arr->n_children != 2) return;
  const struct ArrowArray* id = arr->children[0];
  const struct ArrowArray* nm = arr->children[1];
  CHECK(id->length >= arr->offset + arr->length, "id child too short");
  CHECK(nm->length >= arr->offset + arr->length, "name child too short");
  for (int64_t i = 0; i < arr->length && r->nrows < MAX_ROWS; i++, r->nrows++) {
    CHECK(arr->null_count == 0 || bit(arr->buffers[0], arr->offset + i), "struct row null");
    int64_t j = arr->offset + i + id->offset;
    r->id_valid[r->nrows] = id->null_count == 0 || bit(id->buffers[0], j);
    r->ids[r->nrows] = ((const int64_t*)id->buffers[1])[j];
    int64_t k = arr->offset + i + nm->offset;
    r->name_valid[r->nrows] = nm->null_count == 0 || bit(nm->buffers[0], k);
    const int32_t* offs = nm->buffers[1];
    int32_t len = offs[k + 1] - offs[k];
    if (len < 0 || len >= (int32_t)sizeof r->names[0]) len = (int32_t)sizeof r->names[0] - 1;
    memcpy(r->names[r->nrows], (const char*)nm->buffers[2] + offs[k], (size_t)len);
    r->names[r->nrows][len] = 0;
  }
}

/* drain_stream reads a whole stream into r, checking the stream protocol:
 * schema shape, end-of-stream marker, release callbacks. The arrays are
 * decoded only after the stream is released: the C stream interface makes
 * each array independent of the stream that produced it. */
static void drain_stream(struct ArrowArrayStream* stream, struct read_result* r) {
  memset(r, 0, sizeof *r);
  REQUIRE(stream->release != NULL, "read returned OK without a stream");
  REQUIRE(stream->get_schema != NULL && stream->get_next != NULL, "stream without callbacks");

  struct ArrowSchema sch;
  memset(&sch, 0, sizeof sch);
  int e = stream->get_schema(stream, &sch);
  CHECK(e == 0, "get_schema: errno %d (%s)", e, S(stream->get_last_error(stream)));
  if (e == 0) {
    REQUIRE(sch.release != NULL, "get_schema returned a released schema");
    CHECK(strcmp(sch.format, "+s") == 0, "stream schema format %s, want +s", sch.format);
    r->n_fields = sch.n_children;
    if (sch.n_children == 2) {
      CHECK(strcmp(S(sch.children[0]->name), "id") == 0, "field 0 is %s", S(sch.children[0]->name));
      CHECK(strcmp(sch.children[0]->format, "l") == 0, "id format %s", sch.children[0]->format);
      CHECK(strcmp(S(sch.children[1]->name), "name") == 0, "field 1 is %s",
            S(sch.children[1]->name));
      CHECK(strcmp(sch.children[1]->format, "u") == 0, "name format %s", sch.children[1]->format);
    }
    sch.release(&sch);
    CHECK(sch.release == NULL, "schema release did not mark the schema released");
  }

  enum { MAX_BATCHES = 64 };
  struct ArrowArray arrs[MAX_BATCHES];
  int n = 0;
  for (;;) {
    struct ArrowArray* arr = &arrs[n];
    memset(arr, 0, sizeof *arr);
    e = stream->get_next(stream, arr);
    CHECK(e == 0, "get_next: errno %d (%s)", e, S(stream->get_last_error(stream)));
    if (e != 0 || arr->release == NULL) break; /* end of stream */
    if (++n == MAX_BATCHES) {
      CHECK(0, "more than %d batches", MAX_BATCHES);
      break;
    }
  }
  stream->release(stream);
  CHECK(stream->release == NULL, "stream release did not mark the stream released");

  for (int i = 0; i < n; i++) {
    r->nbatches++;
    decode_batch(&arrs[i], r);
    arrs[i].release(&arrs[i]);
    CHECK(arrs[i].release == NULL, "array release did not mark the array released");
  }
}

/* read_range calls persisting_read and drains the stream into r. */
static int32_t read_range(uintptr_t h, int64_t offset, int64_t limit, int nonblock,
                          struct read_result* r, char** err) {
  memset(r, 0, sizeof *r);
  struct ArrowArrayStream stream;
  memset(&stream, 0, sizeof stream);
  int32_t rc = persisting_read(h, offset, limit, nonblock, &stream, err);
  if (rc != PERSISTING_OK) {
    CHECK(stream.release == NULL, "read failed with %d but filled the stream", rc);
    return rc;
  }
  drain_stream(&stream, r);
  return rc;
}

/* expect_rows checks r against global rows [from, from+n). */
static void expect_rows(const char* what, const struct read_result* r, int64_t from, int64_t n) {
  CHECK(r->nrows == n, "%s: %" PRId64 " rows, want %" PRId64, what, r->nrows, n);
  CHECK(r->n_fields == 2, "%s: %" PRId64 " fields, want 2", what, r->n_fields);
  for (int64_t i = 0; i < r->nrows && i < n; i++) {
    struct row w = row_at(from + i);
    CHECK(r->id_valid[i] == !w.id_null, "%s: row %" PRId64 " id validity %d", what, from + i,
          r->id_valid[i]);
    if (!w.id_null) {
      CHECK(r->ids[i] == w.id, "%s: row %" PRId64 " id %" PRId64 ", want %" PRId64, what,
            from + i, r->ids[i], w.id);
    }
    CHECK(r->name_valid[i] == (w.name != NULL), "%s: row %" PRId64 " name validity %d", what,
          from + i, r->name_valid[i]);
    if (w.name != NULL) {
      CHECK(strcmp(r->names[i], w.name) == 0, "%s: row %" PRId64 " name %s, want %s", what,
            from + i, r->names[i], w.name);
    }
  }
}

/* ---- helpers ---- */

static char* config(const char* dir, int64_t batch_size) {
  static char buf[4096];
  snprintf(buf, sizeof buf, "{\"storage_path\": \"%s\", \"bucket_id\": 0, \"batch_size\": %" PRId64 "}",
           dir, batch_size);
  return buf;
}

static int count_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

static int64_t stat_count(uintptr_t h, const char* key) {
  char* js = NULL;
  char* err = NULL;
  int32_t rc = persisting_stats(h, &js, &err);
  CHECK(rc == PERSISTING_OK, "stats: %d %s", rc, S(take(&err)));
  if (rc != PERSISTING_OK) return -1;
  const char* p = strstr(js, key);
  int64_t v = -1;
  if (p != NULL) v = strtoll(p + strlen(key), NULL, 10);
  take(&js);
  return v;
}

/* flush_and_wait flushes hh with token and waits for the completion. */
static void flush_and_wait(uintptr_t hh, uint64_t token) {
  char* err = NULL;
  int32_t rc = persisting_flush(hh, token, &err);
  CHECK(rc == PERSISTING_PENDING, "flush %" PRIu64 ": %d, want PENDING %s", token, rc, S(take(&err)));
  struct completion c;
  if (rc == PERSISTING_PENDING && wait_token(hh, token, &c)) {
    CHECK(c.status == PERSISTING_OK, "flush %" PRIu64 " completed with status %d", token, c.status);
    if (c.status != PERSISTING_OK) {
      char* msg = persisting_take_error(hh, token);
      fprintf(stderr, "flush error: %s\n", S(msg));
      persisting_free(msg);
    }
  }
}

/* One entry of persisting_versions' JSON list. */
struct version_info {
  uint64_t version;
  int64_t timestamp_us;
  int64_t rows;
};

/* json_int finds "key": inside [obj, end) and parses the integer after it. */
static int json_int(const char* obj, const char* end, const char* key, int64_t* v) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char* p = strstr(obj, pat);
  if (p == NULL || p >= end) return 0;
  char* stop = NULL;
  *v = strtoll(p + strlen(pat), &stop, 10);
  return stop != p + strlen(pat) && stop <= end;
}

/* parse_versions parses a JSON list of flat objects {"version":..,
 * "timestamp_us":..,"rows":..}; it returns the entry count, or -1 when the
 * text is not such a list. */
static int parse_versions(const char* js, struct version_info* out, int max) {
  size_t len = strlen(js);
  if (len < 2 || js[0] != '[' || js[len - 1] != ']') return -1;
  int n = 0;
  for (const char* p = strchr(js, '{'); p != NULL; p = strchr(p, '{')) {
    const char* end = strchr(p, '}');
    if (end == NULL || n == max) return -1;
    int64_t version = 0;
    if (!json_int(p, end, "version", &version) ||
        !json_int(p, end, "timestamp_us", &out[n].timestamp_us) ||
        !json_int(p, end, "rows", &out[n].rows)) {
      return -1;
    }
    out[n++].version = (uint64_t)version;
    p = end;
  }
  return n;
}

/* read_version_range calls persisting_read_version and drains the stream
 * into r. */
static int32_t read_version_range(uintptr_t hh, uint64_t version, int64_t offset, int64_t limit,
                                  struct read_result* r, char** err) {
  memset(r, 0, sizeof *r);
  struct ArrowArrayStream stream;
  memset(&stream, 0, sizeof stream);
  int32_t rc = persisting_read_version(hh, version, offset, limit, &stream, err);
  if (rc != PERSISTING_OK) {
    CHECK(stream.release == NULL, "read_version failed with %d but filled the stream", rc);
    return rc;
  }
  drain_stream(&stream, r);
  return rc;
}

/* ---- sections ---- */

static uintptr_t h; /* the main handle */
static int efd;
static const char* bucket_dir;

static void test_open(void) {
  int f0 = failures;
  char* err = NULL;
  h = 0;
  int32_t rc = persisting_open(config(bucket_dir, 100), &h, &err);
  REQUIRE(rc == PERSISTING_OK, "open: %d %s", rc, S(take(&err)));
  CHECK(err == NULL, "open succeeded but set an error");
  CHECK(h != 0, "open returned handle 0");
  efd = persisting_event_fd(h);
  CHECK(efd >= 0, "event fd %d", efd);

  /* Recovery runs in the background and ends with a token-0 completion that
   * carries the row count: 0 for a new directory. */
  CHECK(wait_ready(h) == 0, "a new bucket recovered rows");

  /* A fresh bucket reads as empty, without blocking. */
  struct read_result r;
  rc = read_range(h, 0, 10, 1, &r, &err);
  CHECK(rc == PERSISTING_OK, "read of an empty bucket: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0, "empty bucket returned %" PRId64 " rows", r.nrows);
  END_SECTION("open");
}

static void test_bad_config(void) {
  int f0 = failures;
  char* err = NULL;
  int fds = count_fds();
  static const char* bad[] = {
      "{not json",
      "{\"bucket_id\": 0, \"batch_size\": 100}", /* no storage_path */
      NULL,                                    /* batch_size 0, filled below */
  };
  char zero[4096];
  char sub[4096];
  snprintf(sub, sizeof sub, "%s-bad", bucket_dir);
  snprintf(zero, sizeof zero, "%s", config(sub, 0));
  bad[2] = zero;
  for (int i = 0; i < 3; i++) {
    uintptr_t out = 0xdead;
    int32_t rc = persisting_open((char*)bad[i], &out, &err);
    CHECK(rc == PERSISTING_INVALID, "open(%s): %d, want %d", bad[i], rc, PERSISTING_INVALID);
    CHECK(err != NULL && strlen(err) > 0, "open(%s): no error message", bad[i]);
    CHECK(out == 0xdead, "failed open wrote a handle");
    take(&err);
  }
  CHECK(count_fds() == fds, "failed opens leaked descriptors: %d -> %d", fds, count_fds());
  END_SECTION("bad_config");
}

static void test_append(void) {
  int f0 = failures;
  char* err = NULL;
  int64_t first = -1;

  int32_t rc = append_rows(h, 0, 3, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_OK && first == 0, "append 1: rc %d first %" PRId64 " %s", rc, first, S(take(&err)));
  first = -1;
  rc = append_rows(h, 3, 3, 0, 1, &first, &err); /* name null_count -1 */
  CHECK(rc == PERSISTING_OK && first == 3, "append 2: rc %d first %" PRId64 " %s", rc, first, S(take(&err)));
  first = -1;
  rc = append_rows(h, 6, 3, 2, 0, &first, &err); /* children at offset 2 */
  CHECK(rc == PERSISTING_OK && first == 6, "append 3: rc %d first %" PRId64 " %s", rc, first, S(take(&err)));
  CHECK(err == NULL, "successful appends set an error");
  END_SECTION("append");
}

static void test_read(void) {
  int f0 = failures;
  char* err = NULL;
  struct read_result r;

  int32_t rc = read_range(h, 2, 5, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read 2+5: %d %s", rc, S(take(&err)));
  expect_rows("read 2+5", &r, 2, 5);

  rc = read_range(h, 0, 9, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read 0+9: %d %s", rc, S(take(&err)));
  expect_rows("read 0+9", &r, 0, 9);

  rc = read_range(h, 7, 100, 0, &r, &err); /* clipped at the end */
  CHECK(rc == PERSISTING_OK, "read 7+100: %d %s", rc, S(take(&err)));
  expect_rows("read 7+100", &r, 7, 2);

  rc = read_range(h, 9, 5, 0, &r, &err); /* exactly at the end */
  CHECK(rc == PERSISTING_OK, "read 9+5: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0 && r.nbatches == 0, "read at the end: %" PRId64 " rows in %d batches",
        r.nrows, r.nbatches);

  rc = read_range(h, 1000, 5, 0, &r, &err); /* far past the end */
  CHECK(rc == PERSISTING_OK, "read 1000+5: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0 && r.nbatches == 0, "read past the end: %" PRId64 " rows", r.nrows);

  /* offset + limit overflows int64: still every row from offset on. */
  rc = read_range(h, 2, INT64_MAX, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read 2+INT64_MAX: %d %s", rc, S(take(&err)));
  expect_rows("read 2+INT64_MAX", &r, 2, 7);
  rc = read_range(h, INT64_MAX, INT64_MAX, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read INT64_MAX+INT64_MAX: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0, "read INT64_MAX+INT64_MAX: %" PRId64 " rows", r.nrows);

  /* A negative offset is refused; a negative limit is an empty read. */
  rc = read_range(h, -1, 5, 0, &r, &err);
  CHECK(rc == PERSISTING_INVALID, "read -1+5: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL && strstr(err, "-1") != NULL, "read -1+5: message %s", S(err));
  take(&err);
  rc = read_range(h, INT64_MIN, 5, 1, &r, &err);
  CHECK(rc == PERSISTING_INVALID, "nonblock read INT64_MIN+5: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "nonblock read INT64_MIN+5: no message");
  take(&err);
  rc = read_range(h, 2, -3, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read 2-3: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0 && r.nbatches == 0, "read with a negative limit: %" PRId64 " rows", r.nrows);

  rc = read_range(h, 3, 0, 0, &r, &err); /* zero limit */
  CHECK(rc == PERSISTING_OK, "read 3+0: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0, "read with limit 0: %" PRId64 " rows", r.nrows);

  rc = read_range(h, 1, 4, 1, &r, &err); /* buffered rows never block */
  CHECK(rc == PERSISTING_OK, "nonblock read 1+4: %d %s", rc, S(take(&err)));
  expect_rows("nonblock read 1+4", &r, 1, 4);
  CHECK(err == NULL, "successful reads set an error");
  END_SECTION("read");
}

static void test_flush(void) {
  int f0 = failures;
  char* err = NULL;
  uint64_t tokens[8];
  int32_t status[8];
  int64_t firsts[8];

  /* Start from a quiet eventfd and an empty completion queue. */
  drain_eventfd(efd);
  CHECK(persisting_poll(h, tokens, status, firsts, 8) == 0, "stale completions before flush");

  int32_t rc = persisting_flush(h, 42, &err);
  CHECK(rc == PERSISTING_PENDING, "flush: %d, want PENDING %s", rc, S(take(&err)));

  struct pollfd pfd = {.fd = efd, .events = POLLIN};
  int n = poll(&pfd, 1, 30000);
  CHECK(n == 1 && (pfd.revents & POLLIN), "eventfd not readable after flush: poll %d revents %d",
        n, pfd.revents);
  uint64_t count = 0;
  CHECK(read(efd, &count, sizeof count) == (ssize_t)sizeof count && count >= 1,
        "eventfd read: count %" PRIu64 " errno %d", count, errno);

  /* The completion is queued before the eventfd is bumped. */
  n = persisting_poll(h, tokens, status, firsts, 8);
  CHECK(n == 1, "poll returned %d completions, want 1", n);
  if (n >= 1) {
    CHECK(tokens[0] == 42, "completion token %" PRIu64, tokens[0]);
    CHECK(status[0] == PERSISTING_OK, "completion status %d", status[0]);
    if (status[0] != PERSISTING_OK) {
      char* msg = persisting_take_error(h, tokens[0]);
      fprintf(stderr, "flush error: %s\n", S(msg));
      persisting_free(msg);
    }
  }
  char* msg = persisting_take_error(h, 42);
  CHECK(msg == NULL, "a successful flush left an error: %s", S(msg));
  take(&msg);
  CHECK(persisting_poll(h, tokens, status, firsts, 8) == 0, "completion delivered twice");

  /* The rows are in the dataset now: a blocking read fetches them from
   * there, a non-blocking one refuses. */
  struct read_result r;
  rc = read_range(h, 2, 5, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read 2+5 after flush: %d %s", rc, S(take(&err)));
  expect_rows("read 2+5 after flush", &r, 2, 5);
  rc = read_range(h, 0, 9, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read 0+9 after flush: %d %s", rc, S(take(&err)));
  expect_rows("read 0+9 after flush", &r, 0, 9);
  rc = read_range(h, 2, 5, 1, &r, &err);
  CHECK(rc == PERSISTING_WOULD_BLOCK, "nonblock read of flushed rows: %d, want %d", rc, PERSISTING_WOULD_BLOCK);
  take(&err);
  rc = read_range(h, 9, 5, 1, &r, &err); /* at the end: nothing to fetch */
  CHECK(rc == PERSISTING_OK && r.nrows == 0, "nonblock read at the end after flush: %d", rc);
  take(&err);

  /* Two flushes with nothing new: two completions, delivered one at a time
   * through a poll capacity of 1. */
  CHECK(persisting_flush(h, 100, &err) == PERSISTING_PENDING, "flush 100");
  take(&err);
  CHECK(persisting_flush(h, 101, &err) == PERSISTING_PENDING, "flush 101");
  take(&err);
  int seen100 = 0, seen101 = 0;
  for (int waited = 0; waited < 3000 && seen100 + seen101 < 2;) {
    n = persisting_poll(h, tokens, status, firsts, 1);
    CHECK(n == 0 || n == 1, "poll with capacity 1 returned %d", n);
    for (int i = 0; i < n; i++) {
      seen100 += tokens[i] == 100;
      seen101 += tokens[i] == 101;
      CHECK(status[i] == PERSISTING_OK, "flush %" PRIu64 " status %d", tokens[i], status[i]);
    }
    if (n == 0) {
      pfd.revents = 0;
      if (poll(&pfd, 1, 10) == 1) drain_eventfd(efd);
      waited++;
    }
  }
  CHECK(seen100 == 1 && seen101 == 1, "completions 100/101 seen %d/%d times", seen100, seen101);
  END_SECTION("flush");
}

static void test_stats(void) {
  int f0 = failures;
  char* js = NULL;
  char* err = NULL;
  int32_t rc = persisting_stats(h, &js, &err);
  CHECK(rc == PERSISTING_OK, "stats: %d %s", rc, S(take(&err)));
  if (rc == PERSISTING_OK) {
    static const char* want[] = {"\"total_count\":9", "\"persisted_count\":9", "\"buffer_count\":0",
                                 "\"ready\":true"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
      const char* p = strstr(S(js), want[i]);
      size_t n = strlen(want[i]);
      CHECK(p != NULL && (p[n] == ',' || p[n] == '}'), "stats lacks %s: %s", want[i], S(js));
    }
    CHECK(js[0] == '{' && js[strlen(js) - 1] == '}', "stats is not a JSON object: %s", js);
  }
  take(&js);
  END_SECTION("stats");
}

static void test_schema_conflict(void) {
  int f0 = failures;
  char* err = NULL;
  struct row rows[2] = {{.id = 1, .name = "a"}, {.id = 2, .name = "b"}};
  struct ArrowArray arr;
  struct ArrowSchema sch;
  struct track t;
  make_batch(rows, 2, 0, 1 /* id as utf8 */, 0, &arr, &sch, &t);
  int64_t first = -99;
  int32_t rc = persisting_append(h, &arr, &sch, 1, &first, &err);
  CHECK(rc == PERSISTING_SCHEMA, "conflicting append: %d, want %d", rc, PERSISTING_SCHEMA);
  CHECK(err != NULL && strstr(err, "id") != NULL, "schema error does not name the field: %s",
        S(err));
  CHECK(first == -99, "failed append wrote first = %" PRId64, first);
  take(&err);
  expect_released_once("conflicting append", &arr, &sch, &t);

  CHECK(stat_count(h, "\"total_count\":") == 9, "the refused batch changed total_count");

  first = -1;
  rc = append_rows(h, 9, 2, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_OK && first == 9, "append after conflict: rc %d first %" PRId64 " %s", rc, first,
        S(take(&err)));
  struct read_result r;
  rc = read_range(h, 8, 10, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read after conflict: %d %s", rc, S(take(&err)));
  expect_rows("read after conflict", &r, 8, 3);
  END_SECTION("schema_conflict");
}

static void test_bad_batches(void) {
  int f0 = failures;
  char* err = NULL;
  int64_t first = -99;
  int64_t before = stat_count(h, "\"total_count\":");

  /* An empty batch. */
  {
    struct ArrowArray arr;
    struct ArrowSchema sch;
    struct track t;
    make_batch(NULL, 0, 0, 0, 0, &arr, &sch, &t);
    int32_t rc = persisting_append(h, &arr, &sch, 1, &first, &err);
    CHECK(rc == PERSISTING_INVALID, "empty batch: %d, want %d", rc, PERSISTING_INVALID);
    CHECK(err != NULL, "empty batch: no message");
    take(&err);
    expect_released_once("empty batch", &arr, &sch, &t);
  }
  /* A top-level schema that is not a struct. */
  {
    struct ArrowArray arr;
    struct ArrowSchema sch;
    struct track t;
    struct row rows[1] = {{.id = 5, .name = "x"}};
    make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
    /* Rewrite the top-level format in the producer's own copy. */
    struct schema_priv* p = sch.private_data;
    free(p->format);
    p->format = strdup("l");
    sch.format = p->format;
    int32_t rc = persisting_append(h, &arr, &sch, 1, &first, &err);
    CHECK(rc == PERSISTING_INVALID, "non-struct batch: %d, want %d", rc, PERSISTING_INVALID);
    CHECK(err != NULL, "non-struct batch: no message");
    take(&err);
    expect_released_once("non-struct batch", &arr, &sch, &t);
  }
  /* An array whose shape disagrees with its schema (one child, two fields). */
  {
    struct ArrowArray arr;
    struct ArrowSchema sch;
    struct track t;
    struct row rows[1] = {{.id = 5, .name = "x"}};
    make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
    /* Drop the name child from the array (releasing it here, since the
     * parent's release only walks n_children) but keep two schema fields. */
    arr.children[1]->release(arr.children[1]);
    arr.n_children = 1;
    int32_t rc = persisting_append(h, &arr, &sch, 1, &first, &err);
    CHECK(rc < 0, "mismatched batch: %d, want an error", rc);
    CHECK(err != NULL, "mismatched batch: no message");
    take(&err);
    expect_released_once("mismatched batch", &arr, &sch, &t);
  }
  CHECK(first == -99, "a failed append wrote first");
  CHECK(stat_count(h, "\"total_count\":") == before, "a refused batch changed total_count");
  END_SECTION("bad_batches");
}

static void test_invalid_handle(void) {
  int f0 = failures;
  const uintptr_t bad = 12345;
  char* err = NULL;

  struct row rows[1] = {{.id = 1, .name = "x"}};
  struct ArrowArray arr;
  struct ArrowSchema sch;
  struct track t;
  make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
  int64_t first = -99;
  int32_t rc = persisting_append(bad, &arr, &sch, 1, &first, &err);
  CHECK(rc < 0, "append on a bad handle: %d", rc);
  CHECK(err != NULL && strlen(err) > 0, "append on a bad handle: no message");
  take(&err);
  expect_released_once("append on a bad handle", &arr, &sch, &t);

  /* The same with errOut == NULL: the status alone must do. */
  make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
  rc = persisting_append(bad, &arr, &sch, 1, &first, NULL);
  CHECK(rc < 0, "append on a bad handle, no errOut: %d", rc);
  expect_released_once("append on a bad handle, no errOut", &arr, &sch, &t);
  CHECK(first == -99, "a failed append wrote first");

  struct ArrowArrayStream stream;
  memset(&stream, 0, sizeof stream);
  rc = persisting_read(bad, 0, 1, 0, &stream, &err);
  CHECK(rc < 0 && err != NULL, "read on a bad handle: %d %s", rc, S(err));
  CHECK(stream.release == NULL, "read on a bad handle filled the stream");
  take(&err);

  rc = persisting_flush(bad, 5, &err);
  CHECK(rc < 0 && err != NULL, "flush on a bad handle: %d %s", rc, S(err));
  take(&err);

  char* js = NULL;
  rc = persisting_stats(bad, &js, &err);
  CHECK(rc < 0 && err != NULL && js == NULL, "stats on a bad handle: %d %s", rc, S(err));
  take(&err);
  take(&js);

  CHECK(persisting_event_fd(bad) < 0, "event fd of a bad handle");
  CHECK(persisting_event_fd(0) < 0, "event fd of handle 0");
  uint64_t tokens[1];
  int32_t status[1];
  int64_t firsts[1];
  CHECK(persisting_poll(bad, tokens, status, firsts, 1) < 0, "poll on a bad handle");
  char* msg = persisting_take_error(bad, 5);
  CHECK(msg != NULL, "take_error on a bad handle returned NULL");
  take(&msg);

  /* Not poisoned: the good handle still works. */
  CHECK(stat_count(h, "\"total_count\":") == 11, "valid call after bad-handle calls");
  CHECK(persisting_event_fd(h) == efd, "event fd changed");
  struct read_result r;
  rc = read_range(h, 0, 2, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read after bad-handle calls: %d %s", rc, S(take(&err)));
  expect_rows("read after bad-handle calls", &r, 0, 2);
  END_SECTION("invalid_handle");
}

/* Token 0 is the end-of-recovery completion's: append and flush refuse it
 * (the batch is still released, exactly once) and queue no completion. */
static void test_reserved_token(void) {
  int f0 = failures;
  char* err = NULL;
  int64_t before = stat_count(h, "\"total_count\":");
  struct row rows[1] = {{.id = 5, .name = "x"}};
  struct ArrowArray arr;
  struct ArrowSchema sch;
  struct track t;
  int64_t first = -99;

  make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
  int32_t rc = persisting_append(h, &arr, &sch, 0, &first, &err);
  CHECK(rc == PERSISTING_INVALID, "append with token 0: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL && strstr(err, "token") != NULL, "append with token 0: message %s", S(err));
  take(&err);
  expect_released_once("append with token 0", &arr, &sch, &t);

  make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
  rc = persisting_append(h, &arr, &sch, 0, &first, NULL);
  CHECK(rc == PERSISTING_INVALID, "append with token 0, no errOut: %d, want %d", rc, PERSISTING_INVALID);
  expect_released_once("append with token 0, no errOut", &arr, &sch, &t);
  CHECK(first == -99, "a refused append wrote first");

  rc = persisting_flush(h, 0, &err);
  CHECK(rc == PERSISTING_INVALID, "flush with token 0: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL && strstr(err, "token") != NULL, "flush with token 0: message %s", S(err));
  take(&err);
  rc = persisting_flush(h, 0, NULL);
  CHECK(rc == PERSISTING_INVALID, "flush with token 0, no errOut: %d, want %d", rc, PERSISTING_INVALID);

  uint64_t tokens[4];
  int32_t status[4];
  int64_t firsts[4];
  int n = persisting_poll(h, tokens, status, firsts, 4);
  CHECK(n == 0, "refused calls queued %d completions (first token %" PRIu64 ")", n,
        n > 0 ? tokens[0] : 0);
  CHECK(stat_count(h, "\"total_count\":") == before, "a refused append changed total_count");
  END_SECTION("reserved_token");
}

/* NULL pointers and a negative poll capacity are refused with INVALID, not
 * a panic: nothing is poisoned, the next valid call works. */
static void test_null_pointers(void) {
  int f0 = failures;
  char* err = NULL;
  int fds = count_fds();
  int64_t before = stat_count(h, "\"total_count\":");

  uintptr_t out = 0xdead;
  int32_t rc = persisting_open(NULL, &out, &err);
  CHECK(rc == PERSISTING_INVALID, "open(NULL config): %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "open(NULL config): no message");
  CHECK(out == 0xdead, "open(NULL config) wrote a handle");
  take(&err);
  CHECK(persisting_open(NULL, &out, NULL) == PERSISTING_INVALID, "open(NULL config), no errOut");
  /* Checked before the directory is touched: INVALID, not LOCKED. */
  rc = persisting_open(config(bucket_dir, 100), NULL, &err);
  CHECK(rc == PERSISTING_INVALID, "open with a NULL out-pointer: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "open with a NULL out-pointer: no message");
  take(&err);

  struct row rows[1] = {{.id = 5, .name = "x"}};
  struct ArrowArray arr;
  struct ArrowSchema sch;
  struct track t;
  int64_t first = -99;
  /* The structs the library could not take are released here. */
  make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
  rc = persisting_append(h, NULL, &sch, new_token(), &first, &err);
  CHECK(rc == PERSISTING_INVALID, "append(NULL batch): %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "append(NULL batch): no message");
  take(&err);
  rc = persisting_append(h, &arr, NULL, new_token(), &first, &err);
  CHECK(rc == PERSISTING_INVALID, "append(NULL schema): %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "append(NULL schema): no message");
  take(&err);
  if (arr.release != NULL) arr.release(&arr);
  if (sch.release != NULL) sch.release(&sch);
  make_batch(rows, 1, 0, 0, 0, &arr, &sch, &t);
  rc = persisting_append(h, &arr, &sch, new_token(), NULL, &err);
  CHECK(rc == PERSISTING_INVALID, "append with a NULL first: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "append with a NULL first: no message");
  take(&err);
  if (arr.release != NULL) arr.release(&arr);
  if (sch.release != NULL) sch.release(&sch);
  CHECK(first == -99, "a refused append wrote first");

  rc = persisting_read(h, 0, 1, 0, NULL, &err);
  CHECK(rc == PERSISTING_INVALID, "read into a NULL stream: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "read into a NULL stream: no message");
  take(&err);
  CHECK(persisting_read(h, 0, 1, 1, NULL, NULL) == PERSISTING_INVALID, "read into a NULL stream, no errOut");

  rc = persisting_stats(h, NULL, &err);
  CHECK(rc == PERSISTING_INVALID, "stats into a NULL pointer: %d, want %d", rc, PERSISTING_INVALID);
  CHECK(err != NULL, "stats into a NULL pointer: no message");
  take(&err);
  CHECK(persisting_stats(h, NULL, NULL) == PERSISTING_INVALID, "stats into a NULL pointer, no errOut");

  uint64_t tokens[4];
  int32_t status[4];
  int64_t firsts[4];
  CHECK(persisting_poll(h, NULL, NULL, NULL, 4) == PERSISTING_INVALID, "poll into NULL arrays");
  CHECK(persisting_poll(h, tokens, NULL, firsts, 4) == PERSISTING_INVALID, "poll with a NULL status array");
  CHECK(persisting_poll(h, tokens, status, NULL, 4) == PERSISTING_INVALID, "poll with a NULL first array");
  CHECK(persisting_poll(h, tokens, status, firsts, -1) == PERSISTING_INVALID, "poll with capacity -1");
  CHECK(persisting_poll(h, tokens, status, firsts, INT32_MIN) == PERSISTING_INVALID,
        "poll with capacity INT32_MIN");
  CHECK(persisting_poll(h, NULL, NULL, NULL, 0) == 0, "poll with capacity 0");

  /* Not poisoned: the bucket works as before. */
  CHECK(stat_count(h, "\"total_count\":") == before, "valid call after NULL pointers");
  CHECK(persisting_event_fd(h) == efd, "event fd changed");
  struct read_result r;
  rc = read_range(h, 0, 3, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read after NULL pointers: %d %s", rc, S(take(&err)));
  expect_rows("read after NULL pointers", &r, 0, 3);
  CHECK(count_fds() == fds, "refused calls leaked descriptors: %d -> %d", fds, count_fds());
  END_SECTION("null_pointers");
}

static void test_locked(void) {
  int f0 = failures;
  char* err = NULL;
  int fds = count_fds();
  for (int i = 0; i < 3; i++) {
    uintptr_t out = 0xdead;
    int32_t rc = persisting_open(config(bucket_dir, 100), &out, &err);
    CHECK(rc == PERSISTING_LOCKED, "second open: %d, want %d (%s)", rc, PERSISTING_LOCKED, S(err));
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    CHECK(err != NULL && strstr(err, pid) != NULL, "lock error does not name pid %s: %s", pid,
          S(err));
    CHECK(out == 0xdead, "failed open wrote a handle");
    take(&err);
  }
  CHECK(count_fds() == fds, "failed opens leaked descriptors: %d -> %d", fds, count_fds());
  /* The holder is unaffected. */
  CHECK(stat_count(h, "\"total_count\":") == 11, "holder after refused opens");
  END_SECTION("locked");
}

/* Appends from several C threads at once: every call gets a distinct first
 * offset and the offsets tile [0, N) exactly. */
#define THREADS 4
#define PER_THREAD 50

struct worker {
  uintptr_t h;
  int64_t firsts[PER_THREAD];
  int bad;
  int bad_release;
};

static void* append_worker(void* arg) {
  struct worker* w = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    char* err = NULL;
    w->firsts[i] = -1;
    /* Straight persisting_append: without a WAL, a ready bucket answers OK
     * (and wait_token is main-thread only). */
    /* Rows 0 and 1 of the data set, spelled out: row_at is not thread-safe. */
    struct row rows[2] = {{.id = 1000, .name = "row-0"}, {.id = 1001, .name = NULL}};
    struct ArrowArray arr;
    struct ArrowSchema sch;
    struct track t;
    make_batch(rows, 2, 0, 0, 0, &arr, &sch, &t);
    int32_t rc = persisting_append(w->h, &arr, &sch, new_token(), &w->firsts[i], &err);
    for (int k = 0; k < 3; k++) {
      if (t.schema_calls[k] != 1 || t.array_calls[k] != 1) w->bad_release++;
    }
    if (rc != PERSISTING_OK) {
      fprintf(stderr, "FAIL concurrent append: %d %s\n", rc, S(err));
      persisting_free(err);
      w->bad++;
    }
  }
  return NULL;
}

static void test_threads(const char* dir) {
  int f0 = failures;
  char* err = NULL;
  uintptr_t h2 = 0;
  int32_t rc = persisting_open(config(dir, 1000), &h2, &err);
  REQUIRE(rc == PERSISTING_OK, "open %s: %d %s", dir, rc, S(take(&err)));
  CHECK(h2 != h, "two open buckets share a handle");
  CHECK(wait_ready(h2) == 0, "a new bucket recovered rows");

  pthread_t th[THREADS];
  static struct worker ws[THREADS];
  for (int i = 0; i < THREADS; i++) {
    ws[i] = (struct worker){.h = h2};
    REQUIRE(pthread_create(&th[i], NULL, append_worker, &ws[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);

  static char seen[THREADS * PER_THREAD];
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < THREADS; i++) {
    CHECK(ws[i].bad == 0, "worker %d: %d failed appends", i, ws[i].bad);
    CHECK(ws[i].bad_release == 0, "worker %d: %d structs not released exactly once", i,
          ws[i].bad_release);
    for (int j = 0; j < PER_THREAD; j++) {
      int64_t f = ws[i].firsts[j];
      CHECK(f >= 0 && f % 2 == 0 && f / 2 < THREADS * PER_THREAD && !seen[f / 2],
            "worker %d append %d: first %" PRId64, i, j, f);
      if (f >= 0 && f % 2 == 0 && f / 2 < THREADS * PER_THREAD) seen[f / 2] = 1;
    }
  }
  CHECK(stat_count(h2, "\"total_count\":") == 2 * THREADS * PER_THREAD, "concurrent total");
  struct read_result r;
  rc = read_range(h2, 0, MAX_ROWS, 1, &r, &err);
  CHECK(rc == PERSISTING_OK, "read concurrent rows: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == MAX_ROWS, "read %" PRId64 " rows", r.nrows);
  for (int64_t i = 0; i < r.nrows; i++) { /* every batch is rows 0..1 */
    struct row w = row_at(i % 2);
    CHECK(r.ids[i] == w.id && r.id_valid[i], "concurrent row %" PRId64 ": id %" PRId64, i,
          r.ids[i]);
    CHECK(r.name_valid[i] == (w.name != NULL) && (w.name == NULL || strcmp(r.names[i], w.name) == 0),
          "concurrent row %" PRId64 ": name %s", i, r.names[i]);
  }
  rc = persisting_close(h2, &err);
  CHECK(rc == PERSISTING_OK, "close: %d %s", rc, S(take(&err)));
  END_SECTION("threads");
}

/* With the write-ahead log on, an append answers PENDING and its completion
 * carries the first offset once the rows are logged and readable; the rows
 * survive a close and reopen. */
static char* wal_config(const char* dir) {
  static char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "{\"storage_path\": \"%s\", \"bucket_id\": 3, \"batch_size\": 100, \"enable_wal\": true}",
           dir);
  return cfg;
}

/* append_logged appends global rows [from, from+n) to a WAL bucket: PENDING,
 * then a completion with the first offset. */
static void append_logged(uintptr_t hw, int64_t from, int n) {
  struct row rows[64];
  for (int i = 0; i < n; i++) rows[i] = row_at(from + i);
  struct ArrowArray arr;
  struct ArrowSchema sch;
  struct track t;
  make_batch(rows, n, 0, 0, 0, &arr, &sch, &t);
  uint64_t token = new_token();
  int64_t first = -99;
  char* err = NULL;
  int32_t rc = persisting_append(hw, &arr, &sch, token, &first, &err);
  CHECK(rc == PERSISTING_PENDING, "WAL append of rows %" PRId64 "..: %d, want PENDING %s", from, rc,
        S(take(&err)));
  CHECK(first == -99, "a pending append wrote first");
  expect_released_once("WAL append", &arr, &sch, &t);
  struct completion c;
  if (rc == PERSISTING_PENDING && wait_token(hw, token, &c)) {
    CHECK(c.status == PERSISTING_OK && c.first == from,
          "WAL append of rows %" PRId64 "..: completed with status %d first %" PRId64, from,
          c.status, c.first);
  }
}

static void test_wal(const char* dir) {
  int f0 = failures;
  char* err = NULL;
  char* cfg = wal_config(dir);
  uintptr_t hw = 0;
  int32_t rc = persisting_open(cfg, &hw, &err);
  REQUIRE(rc == PERSISTING_OK, "open with WAL: %d %s", rc, S(take(&err)));
  CHECK(wait_ready(hw) == 0, "a new WAL bucket recovered rows");

  append_logged(hw, 0, 3);
  append_logged(hw, 3, 3);
  struct read_result r;
  rc = read_range(hw, 0, 10, 1, &r, &err);
  CHECK(rc == PERSISTING_OK, "nonblock read of logged rows: %d %s", rc, S(take(&err)));
  expect_rows("read of logged rows", &r, 0, 6);
  CHECK(stat_count(hw, "\"wal_records\":") == 6, "wal_records");

  /* A conflicting batch is refused at once, not through a completion. */
  {
    struct row rows[1] = {{.id = 1, .name = "a"}};
    struct ArrowArray arr;
    struct ArrowSchema sch;
    struct track t;
    make_batch(rows, 1, 0, 1, 0, &arr, &sch, &t);
    int64_t first = -99;
    rc = persisting_append(hw, &arr, &sch, new_token(), &first, &err);
    CHECK(rc == PERSISTING_SCHEMA, "conflicting WAL append: %d, want %d", rc, PERSISTING_SCHEMA);
    CHECK(err != NULL && strstr(err, "id") != NULL, "schema error: %s", S(err));
    take(&err);
    expect_released_once("conflicting WAL append", &arr, &sch, &t);
  }

  rc = persisting_close(hw, &err);
  CHECK(rc == PERSISTING_OK, "close WAL bucket: %d %s", rc, S(take(&err)));
  rc = persisting_open(wal_config(dir), &hw, &err);
  REQUIRE(rc == PERSISTING_OK, "reopen WAL bucket: %d %s", rc, S(take(&err)));
  CHECK(wait_ready(hw) == 6, "reopened WAL bucket: wrong row count");
  rc = read_range(hw, 0, 10, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read after reopen: %d %s", rc, S(take(&err)));
  expect_rows("WAL bucket after reopen", &r, 0, 6);
  rc = persisting_close(hw, &err);
  CHECK(rc == PERSISTING_OK, "close WAL bucket: %d %s", rc, S(take(&err)));
  END_SECTION("wal");
}

/* persisting_versions lists the dataset's versions, one per flush that
 * wrote rows, with the row count of each; persisting_read_version reads an
 * old version while the live bucket moves on. */
static void test_versions(const char* dir) {
  int f0 = failures;
  char* err = NULL;
  char* js = NULL;
  uintptr_t hv = 0;
  int32_t rc = persisting_open(config(dir, 1000), &hv, &err);
  REQUIRE(rc == PERSISTING_OK, "open %s: %d %s", dir, rc, S(take(&err)));
  CHECK(wait_ready(hv) == 0, "a new bucket recovered rows");

  rc = persisting_versions(hv, &js, &err);
  CHECK(rc == PERSISTING_OK && js != NULL && strcmp(js, "[]") == 0, "versions before a flush: %d %s %s",
        rc, S(js), S(err));
  take(&js);
  take(&err);

  int64_t first = -1;
  rc = append_rows(hv, 0, 3, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_OK && first == 0, "append 0..2: rc %d first %" PRId64 " %s", rc, first,
        S(take(&err)));
  flush_and_wait(hv, new_token());
  rc = append_rows(hv, 3, 2, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_OK && first == 3, "append 3..4: rc %d first %" PRId64 " %s", rc, first,
        S(take(&err)));
  flush_and_wait(hv, new_token());
  /* Buffered, not flushed: in no version. */
  rc = append_rows(hv, 5, 1, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_OK && first == 5, "append 5: rc %d first %" PRId64 " %s", rc, first,
        S(take(&err)));

  rc = persisting_versions(hv, &js, &err);
  CHECK(rc == PERSISTING_OK && js != NULL, "versions: %d %s", rc, S(take(&err)));
  if (rc == PERSISTING_OK && js != NULL) {
    struct version_info v[8];
    int n = parse_versions(js, v, 8);
    CHECK(n == 2, "versions: %d entries in %s, want 2", n, js);
    if (n == 2) {
      CHECK(v[0].version == 1 && v[0].rows == 3, "first version: %" PRIu64 " with %" PRId64
            " rows, want 1 with 3 (%s)", v[0].version, v[0].rows, js);
      CHECK(v[1].version == 2 && v[1].rows == 5, "second version: %" PRIu64 " with %" PRId64
            " rows, want 2 with 5 (%s)", v[1].version, v[1].rows, js);
      CHECK(v[0].timestamp_us > 0 && v[1].timestamp_us >= v[0].timestamp_us,
            "version timestamps %" PRId64 ", %" PRId64, v[0].timestamp_us, v[1].timestamp_us);
    }
  }
  take(&js);

  struct read_result r;
  rc = read_version_range(hv, 1, 0, 100, &r, &err);
  CHECK(rc == PERSISTING_OK, "read version 1: %d %s", rc, S(take(&err)));
  expect_rows("read version 1", &r, 0, 3);
  rc = read_version_range(hv, 1, 2, INT64_MAX, &r, &err);
  CHECK(rc == PERSISTING_OK, "read version 1 from 2, limit INT64_MAX: %d %s", rc, S(take(&err)));
  expect_rows("read version 1 from 2", &r, 2, 1);
  rc = read_version_range(hv, 1, 3, 5, &r, &err); /* at the end of version 1 */
  CHECK(rc == PERSISTING_OK, "read version 1 at its end: %d %s", rc, S(take(&err)));
  CHECK(r.nrows == 0 && r.nbatches == 0, "read version 1 at its end: %" PRId64 " rows", r.nrows);
  rc = read_version_range(hv, 2, 1, 3, &r, &err);
  CHECK(rc == PERSISTING_OK, "read version 2 1+3: %d %s", rc, S(take(&err)));
  expect_rows("read version 2 1+3", &r, 1, 3);

  static const uint64_t unknown[] = {0, 3, 99, UINT64_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    rc = read_version_range(hv, unknown[i], 0, 10, &r, &err);
    CHECK(rc == PERSISTING_INVALID, "read of unknown version %" PRIu64 ": %d, want %d (%s)", unknown[i], rc,
          PERSISTING_INVALID, S(err));
    CHECK(err != NULL && strstr(err, "version") != NULL, "unknown version %" PRIu64 ": message %s",
          unknown[i], S(err));
    take(&err);
  }

  /* The live bucket is untouched by reads of old versions. */
  rc = read_range(hv, 0, 100, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "live read: %d %s", rc, S(take(&err)));
  expect_rows("live read", &r, 0, 6);

  rc = persisting_close(hv, &err);
  CHECK(rc == PERSISTING_OK, "close: %d %s", rc, S(take(&err)));
  rc = persisting_versions(hv, &js, &err);
  CHECK(rc == PERSISTING_CLOSED && js == NULL, "versions on a closed handle: %d", rc);
  take(&err);
  take(&js);
  struct ArrowArrayStream stream;
  memset(&stream, 0, sizeof stream);
  rc = persisting_read_version(hv, 1, 0, 1, &stream, &err);
  CHECK(rc == PERSISTING_CLOSED && stream.release == NULL, "read_version on a closed handle: %d", rc);
  take(&err);
  END_SECTION("versions");
}

static void test_close(void) {
  int f0 = failures;
  char* err = NULL;
  /* A stream taken before the close outlives the handle. */
  struct ArrowArrayStream early;
  memset(&early, 0, sizeof early);
  int32_t rc = persisting_read(h, 0, 11, 0, &early, &err);
  CHECK(rc == PERSISTING_OK, "read before close: %d %s", rc, S(take(&err)));

  rc = persisting_close(h, &err);
  CHECK(rc == PERSISTING_OK && err == NULL, "close: %d %s", rc, S(take(&err)));
  rc = persisting_close(h, &err);
  CHECK(rc == PERSISTING_OK && err == NULL, "second close: %d %s", rc, S(take(&err)));
  if (early.release != NULL) {
    struct read_result r;
    drain_stream(&early, &r);
    expect_rows("stream read before close", &r, 0, 11);
  }

  char* js = NULL;
  rc = persisting_stats(h, &js, &err);
  CHECK(rc == PERSISTING_CLOSED, "stats on a closed handle: %d, want %d", rc, PERSISTING_CLOSED);
  CHECK(err != NULL, "stats on a closed handle: no message");
  take(&err);
  take(&js);

  rc = persisting_flush(h, 9, &err);
  CHECK(rc == PERSISTING_CLOSED, "flush on a closed handle: %d", rc);
  take(&err);

  struct ArrowArrayStream stream;
  memset(&stream, 0, sizeof stream);
  rc = persisting_read(h, 0, 1, 1, &stream, &err);
  CHECK(rc == PERSISTING_CLOSED && stream.release == NULL, "read on a closed handle: %d", rc);
  take(&err);

  int64_t first = -99;
  rc = append_rows(h, 0, 1, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_CLOSED, "append on a closed handle: %d", rc);
  CHECK(err != NULL, "append on a closed handle: no message");
  take(&err);
  CHECK(persisting_event_fd(h) == PERSISTING_CLOSED, "event fd of a closed handle: %d",
        persisting_event_fd(h));

  /* The directory lock went with the handle: the directory opens again,
   * and the close flushed every row, so all 11 come back. An append made
   * at once, before the end of recovery is even polled, lands after them
   * and is not counted as recovered. */
  uintptr_t h3 = 0;
  rc = persisting_open(config(bucket_dir, 100), &h3, &err);
  CHECK(rc == PERSISTING_OK, "reopen after close: %d %s", rc, S(take(&err)));
  if (rc == PERSISTING_OK) {
    CHECK(h3 != h, "a new open reused the closed handle");
    CHECK(persisting_event_fd(h3) >= 0, "reopened event fd");
    first = -1;
    rc = append_rows(h3, 11, 2, 0, 0, &first, &err);
    CHECK(rc == PERSISTING_OK && first == 11, "append after reopen: rc %d first %" PRId64 " %s", rc, first,
          S(take(&err)));
    int64_t recovered = wait_ready(h3);
    CHECK(recovered == 11, "reopen recovered %" PRId64 " rows, want 11", recovered);
    struct read_result r;
    rc = read_range(h3, 0, 100, 0, &r, &err);
    CHECK(rc == PERSISTING_OK, "read after reopen: %d %s", rc, S(take(&err)));
    expect_rows("read after reopen", &r, 0, 13);
    rc = persisting_close(h3, &err);
    CHECK(rc == PERSISTING_OK, "close reopened: %d %s", rc, S(take(&err)));
  }
  END_SECTION("close");
}

/* "crash" mode: rows acknowledged by a WAL bucket, then the process dies
 * without close (so without a flush: the rows are only in the log). */
static void crash_after_logging(const char* dir) {
  char* err = NULL;
  uintptr_t hw = 0;
  int32_t rc = persisting_open(wal_config(dir), &hw, &err);
  REQUIRE(rc == PERSISTING_OK, "open with WAL: %d %s", rc, S(take(&err)));
  CHECK(wait_ready(hw) == 0, "a new WAL bucket recovered rows");
  append_logged(hw, 0, 3);
  append_logged(hw, 3, 3);
  append_logged(hw, 6, 2);
  CHECK(stat_count(hw, "\"persisted_count\":") == 0, "rows were flushed before the crash");
  if (failures > 0) {
    printf("FAILED: %d checks\n", failures);
    fflush(stdout);
    _exit(1);
  }
  printf("crashing\n");
  fflush(stdout);
  _exit(0);
}

/* "recover" mode, after "crash": the log is replayed on open. */
static void test_recover(const char* dir) {
  int f0 = failures;
  char* err = NULL;
  uintptr_t hw = 0;
  int32_t rc = persisting_open(wal_config(dir), &hw, &err);
  REQUIRE(rc == PERSISTING_OK, "open after the crash: %d %s", rc, S(take(&err)));
  /* Appended at once, before the end of recovery is polled: queued behind
   * the replay, so it lands at offset 8, and it is no recovered row. */
  append_logged(hw, 8, 1);
  int64_t n = wait_ready(hw);
  CHECK(n == 8, "recovered %" PRId64 " rows, want 8", n);
  CHECK(stat_count(hw, "\"recovered_rows\":") == 8, "recovered_rows");
  struct read_result r;
  rc = read_range(hw, 0, 100, 0, &r, &err);
  CHECK(rc == PERSISTING_OK, "read after recovery: %d %s", rc, S(take(&err)));
  expect_rows("read after recovery", &r, 0, 9);
  rc = persisting_close(hw, &err);
  CHECK(rc == PERSISTING_OK, "close after recovery: %d %s", rc, S(take(&err)));
  END_SECTION("recover");
}

/* expect_poisoned checks a call made after the panic: POISONED, with a
 * message carrying the stored reason. */
static void expect_poisoned(const char* what, int32_t rc, char** err, const char* reason) {
  CHECK(rc == PERSISTING_POISONED, "%s after the panic: %d, want %d", what, rc, PERSISTING_POISONED);
  if (err != NULL) {
    CHECK(*err != NULL && strstr(*err, reason) != NULL, "%s after the panic: message %s", what,
          S(*err));
    take(err);
  }
}

/* A panic inside an export is recovered, reported as POISONED and poisons
 * the library: every later call, however often, fails with POISONED and the
 * stored reason; close still releases the bucket. The panic is provoked by
 * persisting_poll writing a completion through a bogus, non-NULL pointer: no
 * check can refuse it, and Go turns the fault into a panic. Run alone
 * ("poison" mode): nothing works afterwards. */
static void test_poison(const char* dir) {
  int f0 = failures;
  char* err = NULL;
  uintptr_t hp = 0;
  int32_t rc = persisting_open(config(dir, 100), &hp, &err);
  REQUIRE(rc == PERSISTING_OK, "open: %d %s", rc, S(take(&err)));
  CHECK(wait_ready(hp) == 0, "a new bucket recovered rows");
  int64_t first = -1;
  rc = append_rows(hp, 0, 3, 0, 0, &first, &err);
  CHECK(rc == PERSISTING_OK && first == 0, "append: %d %s", rc, S(take(&err)));
  int fd = persisting_event_fd(hp);
  REQUIRE(fd >= 0, "event fd %d", fd);

  /* Until the flush completes, poll has nothing to write and returns 0. */
  rc = persisting_flush(hp, 7, &err);
  CHECK(rc == PERSISTING_PENDING, "flush: %d %s", rc, S(take(&err)));
  uint64_t* bogus = (uint64_t*)(uintptr_t)8;
  int32_t status[1];
  int64_t firsts[1];
  rc = 0;
  for (int waited_ms = 0; rc == 0 && waited_ms < 30000;) {
    rc = persisting_poll(hp, bogus, status, firsts, 1);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (rc == 0 && poll(&pfd, 1, 100) == 1) {
      drain_eventfd(fd);
    } else {
      waited_ms += 100;
    }
  }
  REQUIRE(rc == PERSISTING_POISONED, "panicking poll: %d, want %d", rc, PERSISTING_POISONED);

  /* The reason, as the next call reports it, names the panic. */
  char* js = NULL;
  rc = persisting_stats(hp, &js, &err);
  CHECK(rc == PERSISTING_POISONED && js == NULL, "stats after the panic: %d", rc);
  CHECK(err != NULL && strstr(err, "poisoned") != NULL && strstr(err, "nil pointer") != NULL,
        "stats after the panic: message %s", S(err));
  char reason[1024];
  snprintf(reason, sizeof reason, "%s", S(strstr(S(err), "nil pointer")));
  take(&err);

  char other[4096];
  snprintf(other, sizeof other, "%s-other", dir);
  for (int round = 0; round < 3; round++) {
    js = NULL;
    rc = persisting_stats(hp, &js, &err);
    CHECK(js == NULL, "stats after the panic wrote JSON");
    expect_poisoned("stats", rc, &err, reason);
    take(&js);
    expect_poisoned("stats on a bad handle", persisting_stats(12345, &js, &err), &err, reason);
    take(&js);

    struct read_result r;
    expect_poisoned("read", read_range(hp, 0, 3, 0, &r, &err), &err, reason);
    expect_poisoned("nonblock read", read_range(hp, 0, 3, 1, &r, &err), &err, reason);

    first = -99;
    expect_poisoned("append", append_rows(hp, 3, 1, 0, 0, &first, &err), &err, reason);
    CHECK(first == -99, "append after the panic wrote first");

    expect_poisoned("flush", persisting_flush(hp, 8, &err), &err, reason);

    uint64_t tokens[4];
    int32_t st[4];
    int64_t f[4];
    expect_poisoned("poll", persisting_poll(hp, tokens, st, f, 4), NULL, reason);
    expect_poisoned("event fd", persisting_event_fd(hp), NULL, reason);
    char* msg = persisting_take_error(hp, 7);
    CHECK(msg != NULL && strstr(msg, reason) != NULL, "take_error after the panic: %s", S(msg));
    take(&msg);

    js = NULL;
    rc = persisting_versions(hp, &js, &err);
    CHECK(js == NULL, "versions after the panic wrote JSON");
    expect_poisoned("versions", rc, &err, reason);
    take(&js);
    struct ArrowArrayStream stream;
    memset(&stream, 0, sizeof stream);
    rc = persisting_read_version(hp, 1, 0, 3, &stream, &err);
    CHECK(stream.release == NULL, "read_version after the panic filled the stream");
    expect_poisoned("read_version", rc, &err, reason);

    uintptr_t h2 = 0;
    expect_poisoned("open", persisting_open(config(other, 100), &h2, &err), &err, reason);
    CHECK(h2 == 0, "open after the panic wrote a handle");
  }

  /* close still works, and releases the directory lock; the poison stays. */
  rc = persisting_close(hp, &err);
  CHECK(rc == PERSISTING_OK, "close after the panic: %d %s", rc, S(take(&err)));
  char lock[4096];
  snprintf(lock, sizeof lock, "%s/LOCK", dir);
  int lfd = open(lock, O_RDWR);
  CHECK(lfd >= 0, "open %s: errno %d", lock, errno);
  if (lfd >= 0) {
    CHECK(flock(lfd, LOCK_EX | LOCK_NB) == 0, "the directory is still locked after close: errno %d",
          errno);
    close(lfd);
  }
  js = NULL;
  expect_poisoned("stats after close", persisting_stats(hp, &js, &err), &err, reason);
  take(&js);
  END_SECTION("poison");
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s DIR [poison|crash|recover]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  char main_dir[2048], thread_dir[2048], wal_dir[2048], versions_dir[2048];
  snprintf(main_dir, sizeof main_dir, "%s/bucket", argv[1]);
  snprintf(thread_dir, sizeof thread_dir, "%s/threads", argv[1]);
  snprintf(wal_dir, sizeof wal_dir, "%s/wal", argv[1]);
  snprintf(versions_dir, sizeof versions_dir, "%s/versions", argv[1]);
  bucket_dir = main_dir;

  const char* mode = argc == 3 ? argv[2] : NULL;
  if (mode != NULL) {
    if (strcmp(mode, "poison") == 0) {
      test_poison(main_dir);
    } else if (strcmp(mode, "crash") == 0) {
      crash_after_logging(wal_dir);
    } else if (strcmp(mode, "recover") == 0) {
      test_recover(wal_dir);
    } else {
      fprintf(stderr, "unknown mode %s\n", mode);
      return 2;
    }
    if (failures > 0) {
      printf("FAILED: %d checks\n", failures);
      return 1;
    }
    printf("PASS\n");
    return 0;
  }

  test_open();
  test_bad_config();
  test_append();
  test_read();
  test_flush();
  test_stats();
  test_schema_conflict();
  test_bad_batches();
  test_reserved_token();
  test_invalid_handle();
  test_null_pointers();
  test_locked();
  test_threads(thread_dir);
  test_wal(wal_dir);
  test_versions(versions_dir);
  test_close();

  if (failures > 0) {
    printf("FAILED: %d checks\n", failures);
    return 1;
  }
  printf("PASS\n");
  return 0;
}
