/*
 * The trace exporter: ddog_trace_exporter_new/free/send/send_trace_chunks,
 * cancel tokens and agent responses, with libdatadog's headers, retries and
 * error codes (libdd-data-pipeline trace_exporter, libdd-trace-utils
 * send_with_retry, libdd-common Endpoint).
 */
#include "exporter.h"
#include "http.h"
#include "log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define E(code) DDOG_TRACE_EXPORTER_ERROR_CODE_##code

#define DEFAULT_AGENT_URL "http://127.0.0.1:8126"
#define DEFAULT_TIMEOUT_MS 3000        /* Endpoint::DEFAULT_TIMEOUT */
#define DEFAULT_OTLP_TIMEOUT_MS 10000  /* DEFAULT_OTLP_TIMEOUT */
#define AGENT_MAX_RETRIES 5            /* RetryStrategy::default() */
#define OTLP_MAX_RETRIES 4             /* OTLP_MAX_RETRIES */
#define RETRY_DELAY_MS 100             /* doubled after each attempt, no jitter */
/* send_with_retry's user agent: "Tracer/" + the libdd-trace-utils crate
 * version (10.0.0 in libdatadog v41). */
#define USER_AGENT "Tracer/10.0.0"

/* ---- cancel tokens --------------------------------------------------------- */

/* A flag plus a pipe whose read end becomes readable on cancel, so a send
 * blocked in poll() wakes up at once. */
struct ddog_TraceExporterCancelToken {
  atomic_bool cancelled;
  int fds[2]; /* -1 if the pipe could not be made: then only the flag works */
};

static void set_flags(int fd) {
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

DDFFI_EXPORT ddog_TraceExporterCancelToken *ddog_trace_exporter_cancel_token_new(void) {
  ddog_TraceExporterCancelToken *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (pipe(t->fds) == 0) {
    set_flags(t->fds[0]);
    set_flags(t->fds[1]);
  } else {
    t->fds[0] = t->fds[1] = -1;
  }
  ddffi_live_inc();
  return t;
}

/* Any thread, any time; only the first call writes to the pipe. */
DDFFI_EXPORT void ddog_trace_exporter_cancel_token_cancel(const ddog_TraceExporterCancelToken *token) {
  if (!token) return;
  ddog_TraceExporterCancelToken *t = (ddog_TraceExporterCancelToken *)token;
  if (!atomic_exchange(&t->cancelled, true) && t->fds[1] >= 0) {
    ssize_t w = write(t->fds[1], "x", 1);
    (void)w;
  }
}

DDFFI_EXPORT void ddog_trace_exporter_cancel_token_drop(ddog_TraceExporterCancelToken *token) {
  if (!token) return;
  if (token->fds[0] >= 0) {
    close(token->fds[0]);
    close(token->fds[1]);
  }
  free(token);
  ddffi_live_dec();
}

/* ---- responses ------------------------------------------------------------- */

/* libdatadog's AgentResponse: Changed carries the body; Unchanged (OTLP) has none. */
struct ddog_TraceExporterResponse {
  ddffi_buf body;
};

static const uint8_t empty_body[1];

DDFFI_EXPORT ddog_ByteSlice ddog_trace_exporter_response_get_body(const ddog_TraceExporterResponse *response) {
  if (!response || !response->body.len) return (ddog_ByteSlice){empty_body, 0};
  return (ddog_ByteSlice){response->body.data, response->body.len};
}

DDFFI_EXPORT void ddog_trace_exporter_response_free(ddog_TraceExporterResponse *response) {
  if (!response) return;
  ddffi_buf_free(&response->body);
  free(response);
  ddffi_live_dec();
}

/* ---- entity headers (libdd-common entity_id) ---------------------------- */

static struct {
  char *container_id, *entity_id, *external_env;
} entity;
static pthread_once_t entity_once = PTHREAD_ONCE_INIT;

static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static size_t hex_run(const char *s, size_t n, size_t want) {
  size_t i = 0;
  while (i < n && i < want && is_hex(s[i])) i++;
  return i;
}

/* Hex groups of the given sizes separated by one of `seps`; returns the length or 0. */
static size_t match_groups(const char *s, size_t n, const int *sizes, int count, const char *seps) {
  size_t at = 0;
  for (int g = 0; g < count; g++) {
    if (g) {
      if (at >= n || !strchr(seps, s[at])) return 0;
      at++;
    }
    if (hex_run(s + at, n - at, (size_t)sizes[g]) != (size_t)sizes[g]) return 0;
    at += (size_t)sizes[g];
  }
  return at;
}

/* `(?:\.scope(?:/[^/ \t]+)?)? *$` */
static bool id_suffix_ok(const char *s, size_t n) {
  size_t i = 0;
  if (n >= 6 && !memcmp(s, ".scope", 6)) {
    size_t j = 6;
    if (j < n && s[j] == '/') {
      size_t k = j + 1;
      while (k < n && s[k] != '/' && s[k] != ' ' && s[k] != '\t') k++;
      if (k > j + 1) {
        size_t m = k;
        while (m < n && s[m] == ' ') m++;
        if (m == n) return true;
      }
    }
    while (j < n && s[j] == ' ') j++;
    if (j == n) return true;
  }
  while (i < n && s[i] == ' ') i++;
  return i == n;
}

/* libdatadog's CONTAINER_REGEX on the path part of one cgroup line:
 * UUID | PCF UUID | 64 hex | 32 hex "-" digits, then the suffix, leftmost first. */
static bool find_container_id(const char *s, size_t n, const char **id, size_t *id_len) {
  static const int uuid[] = {8, 4, 4, 4, 12}, pcf[] = {8, 4, 4, 4, 4}, one64[] = {64}, one32[] = {32};
  for (size_t i = 0; i < n; i++) {
    const char *p = s + i;
    size_t rest = n - i, len[4];
    len[0] = match_groups(p, rest, uuid, 5, "-_");
    len[1] = match_groups(p, rest, pcf, 5, "-");
    len[2] = match_groups(p, rest, one64, 1, "");
    len[3] = match_groups(p, rest, one32, 1, "");
    if (len[3]) {
      size_t k = 32;
      if (k < rest && p[k] == '-' && k + 1 < rest && p[k + 1] >= '0' && p[k + 1] <= '9') {
        k += 2;
        while (k < rest && p[k] >= '0' && p[k] <= '9') k++;
        len[3] = k;
      } else {
        len[3] = 0;
      }
    }
    for (int a = 0; a < 4; a++) {
      if (len[a] && id_suffix_ok(p + len[a], rest - len[a])) {
        *id = p;
        *id_len = len[a];
        return true;
      }
    }
  }
  return false;
}

static char *read_small_file(const char *path) {
  FILE *f = fopen(path, "re");
  if (!f) return NULL;
  ddffi_buf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (1 << 20)) ddffi_buf_put(&b, chunk, n);
  fclose(f);
  ddffi_buf_put(&b, "", 1);
  if (b.failed) {
    ddffi_buf_free(&b);
    return NULL;
  }
  return (char *)b.data;
}

/* Calls fn(line, len) for each line ("\n" or "\r\n" terminated) until it returns true. */
static bool each_line(const char *text, bool (*fn)(const char *, size_t, void *), void *ctx) {
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    size_t l = len && p[len - 1] == '\r' ? len - 1 : len;
    if (fn(p, l, ctx)) return true;
    p += len + (nl ? 1 : 0);
  }
  return false;
}

/* `^\d+:[^:]*:(.+)$`, then the container id in the captured part. */
static bool container_line(const char *line, size_t n, void *ctx) {
  size_t i = 0;
  while (i < n && line[i] >= '0' && line[i] <= '9') i++;
  if (i == 0 || i >= n || line[i] != ':') return false;
  i++;
  while (i < n && line[i] != ':') i++;
  if (i >= n || i + 1 >= n) return false;
  const char *id;
  size_t id_len;
  if (!find_container_id(line + i + 1, n - i - 1, &id, &id_len)) return false;
  *(char **)ctx = strndup(id, id_len);
  return true;
}

typedef struct cgroup_node {
  char path[4096];
  bool found;
} cgroup_node;

/* The cgroup v1 "memory" controller's node, else the v2 ("") one. */
static bool cgroup_line(const char *line, size_t n, void *ctx) {
  cgroup_node *node = ctx;
  const char *c1 = memchr(line, ':', n);
  if (!c1) return false;
  const char *c2 = memchr(c1 + 1, ':', (size_t)(line + n - c1 - 1));
  if (!c2 || memchr(c2 + 1, ':', (size_t)(line + n - c2 - 1))) return false;
  bool memory = false, unified = false;
  for (const char *c = c1 + 1; c <= c2;) {
    const char *e = c;
    while (e < c2 && *e != ',') e++;
    if (e - c == 6 && !memcmp(c, "memory", 6)) memory = true;
    if (e == c) unified = true;
    c = e + 1;
  }
  if (!memory && !unified) return false;
  const char *rel = c2 + 1;
  size_t rel_len = (size_t)(line + n - rel);
  if (rel_len && rel[0] == '/') rel++, rel_len--;
  snprintf(node->path, sizeof node->path, "/sys/fs/cgroup/%s%.*s", memory ? "memory/" : "", (int)rel_len, rel);
  node->found = true;
  return memory;
}

static void init_entity(void) {
  char *cgroup = read_small_file("/proc/self/cgroup");
  if (cgroup) each_line(cgroup, container_line, &entity.container_id);
  if (entity.container_id) {
    size_t n = strlen(entity.container_id) + 4;
    entity.entity_id = malloc(n);
    if (entity.entity_id) snprintf(entity.entity_id, n, "ci-%s", entity.container_id);
  } else if (cgroup) {
    /* The cgroup node's inode, unless in the host cgroup namespace. */
    struct stat ns, st;
    cgroup_node node = {.found = false};
    if (stat("/proc/self/ns/cgroup", &ns) == 0 && ns.st_ino != 0xEFFFFFFBu) {
      each_line(cgroup, cgroup_line, &node);
      if (node.found && stat(node.path, &st) == 0) {
        entity.entity_id = malloc(32);
        if (entity.entity_id) snprintf(entity.entity_id, 32, "in-%llu", (unsigned long long)st.st_ino);
      }
    }
  }
  free(cgroup);
  const char *ext = getenv("DD_EXTERNAL_ENV");
  if (ext && *ext && ddffi_utf8_valid((const uint8_t *)ext, strlen(ext))) entity.external_env = strdup(ext);
}

/* ---- the exporter ---------------------------------------------------------- */

/* The payload cache's bound: at most this many buffers (as many sends at
 * once reuse memory; more allocate), each at most this many bytes (a
 * larger one is freed after its send), so at most 4 x 8 MiB kept per
 * exporter, freed by ddog_trace_exporter_free. */
#define PAYLOAD_CACHE_SLOTS 4
#define PAYLOAD_CACHE_MAX_BYTES ((size_t)8 << 20)

struct ddog_TraceExporter {
  ddffi_url agent;
  char *traces_target; /* the agent URL's path + "/v0.4/traces" */
  uint64_t timeout_ms;
  char *test_token; /* NULL when unset */
  bool test_token_nul; /* it had a NUL, which no header value may hold (the copy stops there) */
  /* Datadog-Meta-* values; NULL when empty or not a valid header value */
  char *lang, *lang_version, *lang_interpreter, *tracer_version;
  bool client_computed_stats;
  /* OTLP export, when an endpoint is configured */
  char *otlp_endpoint;
  uint64_t otlp_timeout_ms;
  ddffi_otlp_resource resource;
  const ddog_SharedRuntime *shared_runtime; /* a reference, or NULL */
  /* The msgpack payload buffers of finished sends, kept for the next ones
   * (see take_payload): a fresh multi-megabyte buffer per send is pages the
   * kernel faults in and zeroes again every time. */
  pthread_mutex_t cache_lock;
  ddffi_buf cached[PAYLOAD_CACHE_SLOTS];
  size_t n_cached;
};

/* An empty payload buffer: a kept one when there is (its capacity already
 * fits a send like the last), else a new one. */
static ddffi_buf take_payload(const ddog_TraceExporter *cx) {
  ddog_TraceExporter *x = (ddog_TraceExporter *)cx; /* the cache is the only thing a send changes */
  ddffi_buf b = {0};
  pthread_mutex_lock(&x->cache_lock);
  if (x->n_cached) b = x->cached[--x->n_cached];
  pthread_mutex_unlock(&x->cache_lock);
  b.len = 0;
  b.failed = false;
  return b;
}

/* Gives a payload buffer back: kept when the cache has room and it is not
 * over the cap, else freed. */
static void give_payload(const ddog_TraceExporter *cx, ddffi_buf *b) {
  ddog_TraceExporter *x = (ddog_TraceExporter *)cx;
  if (b->data && !b->failed && b->cap <= PAYLOAD_CACHE_MAX_BYTES) {
    pthread_mutex_lock(&x->cache_lock);
    bool kept = x->n_cached < PAYLOAD_CACHE_SLOTS;
    if (kept) x->cached[x->n_cached++] = *b;
    pthread_mutex_unlock(&x->cache_lock);
    if (kept) {
      *b = (ddffi_buf){0};
      return;
    }
  }
  ddffi_buf_free(b);
}

/* http::HeaderValue::from_str (http 1.1): any byte but controls and DEL;
 * tab is fine. */
static bool header_value_ok(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (!((*p >= 0x20 && *p != 0x7f) || *p == '\t')) return false;
  return true;
}

static char *opt_cstr(const ddffi_opt_str *s) {
  if (!s->set) return NULL;
  return strndup(s->value.data ? s->value.data : "", s->value.len);
}

static bool has_nul(const ddffi_opt_str *s) { return s->set && s->value.len && memchr(s->value.data, 0, s->value.len); }

/* libdatadog omits a Datadog-Meta-* header that is empty or not a valid value (a NUL included). */
static char *meta_header(const ddffi_opt_str *s) {
  char *v = opt_cstr(s);
  if (v && (!*v || !header_value_ok(v) || has_nul(s))) {
    free(v);
    v = NULL;
  }
  return v;
}

static bool copy_str(ddffi_str *dst, const ddffi_opt_str *src) {
  return ddffi_str_copy(dst, src->value.data, src->set ? src->value.len : 0);
}

/* A random UUID v4, libdatadog's default runtime id. */
static void new_runtime_id(char out[37]) {
  uint8_t b[16];
  FILE *f = fopen("/dev/urandom", "re");
  if (!f || fread(b, 1, sizeof b, f) != sizeof b) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srand((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid()));
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)rand();
  }
  if (f) fclose(f);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
           b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void free_resource(ddffi_otlp_resource *r) {
  ddffi_str *all[] = {&r->service,        &r->env,        &r->version,    &r->hostname,   &r->language,
                      &r->lang_version,   &r->tracer_version, &r->runtime_id, &r->scope_name, &r->scope_version};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ddffi_str_free(all[i]);
}

static void exporter_free(ddog_TraceExporter *x) {
  ddffi_url_free(&x->agent);
  free(x->traces_target);
  free(x->test_token);
  free(x->lang);
  free(x->lang_version);
  free(x->lang_interpreter);
  free(x->tracer_version);
  free(x->otlp_endpoint);
  free_resource(&x->resource);
  ddffi_shared_runtime_release(x->shared_runtime);
  for (size_t i = 0; i < x->n_cached; i++) ddffi_buf_free(&x->cached[i]);
  pthread_mutex_destroy(&x->cache_lock);
  free(x);
}

static const char no_tls[] =
    "https:// URLs need TLS, which the bundled trace exporter does not implement; use an http:// or unix:// URL, "
    "or a real libdatadog build (set DD_LIBDATADOG_PATH)";

/* The agent URL, parsed as libdatadog's builder does, and the v0.4 target. */
static ddog_TraceExporterError *set_agent(ddog_TraceExporter *x, const ddog_TraceExporterConfig *config) {
  const ddffi_opt_str *url = &config->url;
  const char *s = url->set ? (url->value.data ? url->value.data : "") : DEFAULT_AGENT_URL;
  size_t n = url->set ? url->value.len : strlen(DEFAULT_AGENT_URL);
  char why[128];
  if (!ddffi_url_parse(s, n, &x->agent, why, sizeof why))
    return ddffi_errorf(E(INVALID_URL), "Invalid builder input: Invalid URI: %s", why);
  /* "host:port" parses, but libdatadog then panics adding a path to it. */
  if (x->agent.kind == DDFFI_URL_AUTHORITY)
    return ddffi_error(E(PANIC), "Operation panicked (the agent URL has no scheme, e.g. http://)");
  if (x->agent.kind == DDFFI_URL_HTTPS) return ddffi_errorf(E(INVALID_URL), "Invalid URI: %s", no_tls);
  /* add_path(): the URL's path without one trailing '/', then the endpoint; the query is dropped. */
  size_t len = strlen(x->agent.path);
  if (len && x->agent.path[len - 1] == '/') len--;
  x->traces_target = malloc(len + sizeof "/v0.4/traces");
  if (!x->traces_target) return ddffi_error(E(INTERNAL), "out of memory");
  sprintf(x->traces_target, "%.*s/v0.4/traces", (int)len, x->agent.path);
  return NULL;
}

/* OTLP: the endpoint is parsed at send time, as in libdatadog (but https is
 * refused now); the resource is what libdatadog fills for traces: no
 * hostname, no language version. libdatadog marks the resource (and the
 * request) as stats-computed only when its OTLP stats export runs, which
 * the FFI cannot enable: client_computed_stats does not reach OTLP. */
static ddog_TraceExporterError *set_otlp(ddog_TraceExporter *x, const ddog_TraceExporterConfig *config) {
  x->otlp_endpoint = opt_cstr(&config->otlp_endpoint);
  if (!x->otlp_endpoint) return ddffi_error(E(INTERNAL), "out of memory");
  x->otlp_timeout_ms = config->has_connection_timeout ? config->connection_timeout_ms : DEFAULT_OTLP_TIMEOUT_MS;
  ddffi_url probe;
  char why[128];
  if (ddffi_url_parse(x->otlp_endpoint, strlen(x->otlp_endpoint), &probe, why, sizeof why)) {
    bool https = probe.kind == DDFFI_URL_HTTPS;
    ddffi_url_free(&probe);
    if (https) return ddffi_errorf(E(INVALID_URL), "Invalid OTLP endpoint URL: %s", no_tls);
  }
  char runtime_id[37];
  new_runtime_id(runtime_id);
  ddffi_otlp_resource *r = &x->resource;
  if (!copy_str(&r->service, &config->service) || !copy_str(&r->env, &config->env) ||
      !copy_str(&r->version, &config->version) || !copy_str(&r->language, &config->language) ||
      !copy_str(&r->tracer_version, &config->tracer_version) ||
      !ddffi_str_copy(&r->runtime_id, runtime_id, strlen(runtime_id)) ||
      !copy_str(&r->scope_name, &config->otlp_scope_name) || !copy_str(&r->scope_version, &config->otlp_scope_version))
    return ddffi_error(E(INTERNAL), "out of memory");
  return NULL;
}

/* Copies what it needs: the config can be freed afterwards. */
DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_new(ddog_TraceExporter **out_handle,
                                                              const ddog_TraceExporterConfig *config) {
  if (!config || !out_handle) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  ddog_TraceExporter *x = calloc(1, sizeof *x);
  if (!x) return ddffi_error(E(INTERNAL), "out of memory");
  pthread_mutex_init(&x->cache_lock, NULL);
  ddog_TraceExporterError *err = set_agent(x, config);
  x->timeout_ms = config->has_connection_timeout ? config->connection_timeout_ms : DEFAULT_TIMEOUT_MS;
  x->test_token = opt_cstr(&config->test_session_token);
  x->test_token_nul = has_nul(&config->test_session_token);
  x->lang = meta_header(&config->language);
  x->lang_version = meta_header(&config->lang_version);
  x->lang_interpreter = meta_header(&config->lang_interpreter);
  x->tracer_version = meta_header(&config->tracer_version);
  x->client_computed_stats = config->client_computed_stats;
  x->shared_runtime = ddffi_shared_runtime_retain(config->shared_runtime);
  if (!err && config->test_session_token.set && !x->test_token) err = ddffi_error(E(INTERNAL), "out of memory");
  if (!err && config->otlp_endpoint.set) err = set_otlp(x, config);
  if (err) {
    exporter_free(x);
    return err;
  }
  pthread_once(&entity_once, init_entity);
  ddffi_live_inc();
  *out_handle = x;
  return NULL;
}

/* libdatadog stops the exporter's background workers; this library has
 * none. Sends still in flight on other threads must have returned. */
DDFFI_EXPORT void ddog_trace_exporter_free(ddog_TraceExporter *handle) {
  if (!handle) return;
  exporter_free(handle);
  ddffi_live_dec();
}

/* ---- sending --------------------------------------------------------------- */

/* http::StatusCode's canonical reasons (its Display is "<code> <reason>"). */
static const char *status_reason(int s) {
  static const struct {
    int code;
    const char *text;
  } reasons[] = {
      {100, "Continue"}, {101, "Switching Protocols"}, {102, "Processing"}, {200, "OK"}, {201, "Created"},
      {202, "Accepted"}, {203, "Non Authoritative Information"}, {204, "No Content"}, {205, "Reset Content"},
      {206, "Partial Content"}, {207, "Multi-Status"}, {208, "Already Reported"}, {226, "IM Used"},
      {300, "Multiple Choices"}, {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
      {304, "Not Modified"}, {305, "Use Proxy"}, {307, "Temporary Redirect"}, {308, "Permanent Redirect"},
      {400, "Bad Request"}, {401, "Unauthorized"}, {402, "Payment Required"}, {403, "Forbidden"},
      {404, "Not Found"}, {405, "Method Not Allowed"}, {406, "Not Acceptable"},
      {407, "Proxy Authentication Required"}, {408, "Request Timeout"}, {409, "Conflict"}, {410, "Gone"},
      {411, "Length Required"}, {412, "Precondition Failed"}, {413, "Payload Too Large"}, {414, "URI Too Long"},
      {415, "Unsupported Media Type"}, {416, "Range Not Satisfiable"}, {417, "Expectation Failed"},
      {418, "I'm a teapot"}, {421, "Misdirected Request"}, {422, "Unprocessable Entity"}, {423, "Locked"},
      {424, "Failed Dependency"}, {426, "Upgrade Required"}, {428, "Precondition Required"},
      {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
      {451, "Unavailable For Legal Reasons"}, {500, "Internal Server Error"}, {501, "Not Implemented"},
      {502, "Bad Gateway"}, {503, "Service Unavailable"}, {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"}, {506, "Variant Also Negotiates"}, {507, "Insufficient Storage"},
      {508, "Loop Detected"}, {510, "Not Extended"}, {511, "Network Authentication Required"},
  };
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].code == s) return reasons[i].text;
  return "<unknown status code>";
}

size_t ddffi_utf8_step(const uint8_t *p, size_t n, bool *valid) {
  uint8_t c = p[0];
  size_t need = 0, k = 1;
  uint8_t lo = 0x80, hi = 0xBF;
  *valid = c < 0x80;
  if (*valid) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  }
  while (need && k <= need && k < n && p[k] >= (k == 1 ? lo : 0x80) && p[k] <= (k == 1 ? hi : 0xBF)) k++;
  *valid = need && k == need + 1;
  return k;
}

/* Appends p as Rust's String::from_utf8_lossy. */
static void put_lossy(ddffi_buf *out, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n;) {
    bool valid;
    size_t k = ddffi_utf8_step(p + i, n - i, &valid);
    ddffi_buf_put(out, valid ? (const void *)(p + i) : "\xEF\xBF\xBD", valid ? k : 3);
    i += k;
  }
}

/* An error whose message may be long; like libdatadog's CString::new(..)
 * .unwrap_or_default(), a message containing NUL becomes empty. */
static ddog_TraceExporterError *error_buf(ddog_TraceExporterErrorCode code, ddffi_buf *msg) {
  ddffi_buf_put(msg, "", 1);
  ddog_TraceExporterError *e;
  if (msg->failed)
    e = ddffi_error(code, NULL);
  else
    e = ddffi_error(code, memchr(msg->data, 0, msg->len - 1) ? "" : (const char *)msg->data);
  ddffi_buf_free(msg);
  return e;
}

/* TraceExporterError::Request: the agent answered with a non-2xx status. */
static ddog_TraceExporterError *request_error(const ddffi_http_response *resp) {
  ddffi_buf msg = {0};
  char head[128];
  snprintf(head, sizeof head, "Agent responded with an error code: Error code: %d %s, Response: ", resp->status,
           status_reason(resp->status));
  ddffi_buf_put(&msg, head, strlen(head));
  put_lossy(&msg, resp->body.data, resp->body.len);
  ddog_TraceExporterErrorCode code = resp->status >= 400 && resp->status < 499 ? E(HTTP_CLIENT)
                                     : resp->status >= 500                    ? E(HTTP_SERVER)
                                                                              : E(HTTP_UNKNOWN);
  return error_buf(code, &msg);
}

static ddog_TraceExporterError *cancelled_error(void) {
  /* io::Error(Interrupted, ...) maps to IoError */
  return ddffi_error(E(IO_ERROR), "IO: send cancelled via cancellation token");
}

/* The error after the last attempt failed without a response, as
 * libdatadog classifies it (send_with_retry, then TraceExporterError).
 * All network failures of hyper map to ConnectionClosed, i.e. ConnectionReset. */
static ddog_TraceExporterError *transport_error(ddffi_http_result r, const ddffi_http_response *resp, bool otlp) {
  switch (r) {
  case DDFFI_HTTP_CANCELLED:
    return cancelled_error();
  case DDFFI_HTTP_TIMED_OUT:
    return ddffi_error(E(TIMED_OUT), "IO: timed out");
  case DDFFI_HTTP_CONNECT_FAILED:
    if (resp->error[0])
      return ddffi_errorf(E(CONNECTION_RESET), "Network: Network error: client error (Connect): %s", resp->error);
    return ddffi_error(E(CONNECTION_RESET), "Network: Network error: client error (Connect)");
  case DDFFI_HTTP_SEND_FAILED:
    return ddffi_error(E(CONNECTION_RESET), "Network: Network error: client error (SendRequest)");
  case DDFFI_HTTP_NO_ABSOLUTE:
    return ddffi_error(E(CONNECTION_RESET), "Network: Network error: client error (UserAbsoluteUriRequired)");
  case DDFFI_HTTP_BODY_FAILED:
    return otlp ? ddffi_error(E(INTERNAL), "Internal: Invalid worker state: Failed to read OTLP response body")
                : ddffi_error(E(INVALID_DATA), "IO: failed to read response body");
  case DDFFI_HTTP_BODY_TOO_LONG:
    /* libdatadog reads any length; the bundled library stops (http.h) */
    return ddffi_errorf(E(HTTP_BODY_TOO_LONG), "Network: the agent's response body is over %zu bytes",
                        DDFFI_HTTP_MAX_BODY);
  case DDFFI_HTTP_OTHER_FAILED:
    return ddffi_errorf(E(NETWORK_UNKNOWN), "Network: HTTP error: %s", resp->error);
  case DDFFI_HTTP_OK:
    break;
  }
  return ddffi_error(E(INTERNAL), NULL);
}

/* libdatadog fails the request before sending (no retry) when a header
 * value is not visible ASCII. */
static ddog_TraceExporterError *build_error(bool otlp) {
  return otlp ? ddffi_error(E(INTERNAL), "Internal: Invalid worker state: Failed to build OTLP request")
              : ddffi_error(E(IO_ERROR), "IO: other error");
}

/* send_with_retry: every failure (no response, 4xx, 5xx) is retried up to
 * max_retries times, after 100 ms, 200 ms, 400 ms, ... (no jitter); each
 * attempt has its own timeout. The last attempt's outcome is returned. */
static ddffi_http_result send_with_retry(const ddffi_http_request *req, unsigned max_retries,
                                         ddffi_http_response *resp) {
  for (unsigned attempt = 1;; attempt++) {
    ddffi_http_result r = ddffi_http_post(req, resp);
    if (r == DDFFI_HTTP_CANCELLED) return r;
    bool failed = r != DDFFI_HTTP_OK || (resp->status >= 400 && resp->status < 600);
    if (!failed || attempt > max_retries) return r;
    if (!ddffi_http_sleep((uint64_t)RETRY_DELAY_MS << (attempt - 1), req->cancel_fd)) return DDFFI_HTTP_CANCELLED;
  }
}

/* The headers libdatadog puts on every request (Endpoint::set_standard_headers). */
static size_t standard_headers(const ddog_TraceExporter *x, bool with_token, ddffi_http_header *h) {
  size_t n = 0;
  h[n++] = (ddffi_http_header){"user-agent", USER_AGENT};
  if (with_token && x->test_token) h[n++] = (ddffi_http_header){"x-datadog-test-session-token", x->test_token};
  if (entity.container_id) h[n++] = (ddffi_http_header){"datadog-container-id", entity.container_id};
  if (entity.entity_id) h[n++] = (ddffi_http_header){"datadog-entity-id", entity.entity_id};
  if (entity.external_env) h[n++] = (ddffi_http_header){"datadog-external-env", entity.external_env};
  return n;
}

static bool headers_ok(const ddffi_http_header *h, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!header_value_ok(h[i].value)) return false;
  return true;
}

/* What a successful send yields: libdatadog's AgentResponse. */
typedef struct outcome {
  bool changed;  /* Changed { body } (agent) vs Unchanged (OTLP, nothing sent) */
  ddffi_buf body;
} outcome;

static ddog_TraceExporterError *send_v04(const ddog_TraceExporter *x, const ddog_TracerTraceChunks *chunks,
                                         int cancel_fd, outcome *out) {
  ddffi_buf payload = take_payload(x);
  ddffi_encode_v04(chunks, &payload);
  if (payload.failed) {
    give_payload(x, &payload);
    return ddffi_error(E(INTERNAL), "out of memory");
  }
  char count[24];
  snprintf(count, sizeof count, "%zu", ddffi_chunks_len(chunks));

  ddffi_http_header h[16];
  size_t n = standard_headers(x, true, h);
  size_t checked = n; /* libdatadog validates these when building the request */
  if (x->lang) h[n++] = (ddffi_http_header){"datadog-meta-lang", x->lang};
  if (x->lang_version) h[n++] = (ddffi_http_header){"datadog-meta-lang-version", x->lang_version};
  if (x->lang_interpreter) h[n++] = (ddffi_http_header){"datadog-meta-lang-interpreter", x->lang_interpreter};
  if (x->tracer_version) h[n++] = (ddffi_http_header){"datadog-meta-tracer-version", x->tracer_version};
  if (x->client_computed_stats) h[n++] = (ddffi_http_header){"datadog-client-computed-stats", "true"};
  h[n++] = (ddffi_http_header){"datadog-send-real-http-status", "1"};
  h[n++] = (ddffi_http_header){"x-datadog-trace-count", count};
  h[n++] = (ddffi_http_header){"content-type", "application/msgpack"};
  if (!headers_ok(h, checked) || x->test_token_nul) {
    give_payload(x, &payload);
    return build_error(false);
  }

  ddffi_http_request req = {.url = &x->agent,
                            .target = x->traces_target,
                            .headers = h,
                            .header_count = n,
                            .body = payload.data,
                            .body_len = payload.len,
                            .timeout_ms = x->timeout_ms,
                            .cancel_fd = cancel_fd};
  ddffi_http_response resp = {0};
  ddffi_http_result r = send_with_retry(&req, AGENT_MAX_RETRIES, &resp);
  give_payload(x, &payload);

  ddog_TraceExporterError *err = NULL;
  if (r != DDFFI_HTTP_OK)
    err = transport_error(r, &resp, false);
  else if (resp.status < 200 || resp.status > 299)
    err = request_error(&resp);
  else {
    ddffi_log(DDOG_LOG_EVENT_LEVEL_DEBUG, "sent %s trace chunks (%zu bytes) to the agent %s: HTTP %d", count,
              req.body_len, x->traces_target, resp.status);
    out->changed = true;
    put_lossy(&out->body, resp.body.data, resp.body.len);
    if (out->body.failed) err = ddffi_error(E(INTERNAL), "out of memory");
  }
  if (err) ddffi_log(DDOG_LOG_EVENT_LEVEL_ERROR, "sending %s trace chunks to the agent failed: %s", count, err->msg);
  ddffi_buf_free(&resp.body);
  return err;
}

/* OTLP/HTTP JSON to the configured endpoint, path used as given. Success is
 * libdatadog's Unchanged: an OTLP answer carries no sampling rates. */
static ddog_TraceExporterError *send_otlp(const ddog_TraceExporter *x, ddog_TracerTraceChunks *chunks,
                                          int cancel_fd) {
  /* No agent downstream drops the unsampled traces, so libdatadog does. */
  ddffi_chunks_drop_unsampled(chunks);
  if (ddffi_chunks_len(chunks) == 0) return NULL; /* Unchanged, nothing sent */

  ddffi_url url;
  char why[128];
  if (!ddffi_url_parse(x->otlp_endpoint, strlen(x->otlp_endpoint), &url, why, sizeof why))
    return ddffi_errorf(E(INTERNAL), "Internal: Invalid worker state: Invalid OTLP endpoint URL: %s", why);

  ddffi_buf body = {0};
  ddffi_encode_otlp_json(chunks, &x->resource, &body);
  ddog_TraceExporterError *err = NULL;
  if (body.failed) err = ddffi_error(E(INTERNAL), "Internal: Invalid worker state: failed to encode OTLP request");

  ddffi_http_header h[16];
  size_t n = standard_headers(x, false, h);
  if (!err && !headers_ok(h, n)) err = build_error(true);
  h[n++] = (ddffi_http_header){"content-type", "application/json"};
  /* here an invalid token is skipped rather than failing the request */
  if (x->test_token && header_value_ok(x->test_token) && !x->test_token_nul)
    h[n++] = (ddffi_http_header){"x-datadog-test-session-token", x->test_token};

  if (!err) {
    ddffi_http_request req = {.url = &url,
                              .target = url.path_query,
                              .headers = h,
                              .header_count = n,
                              .body = body.data,
                              .body_len = body.len,
                              .timeout_ms = x->otlp_timeout_ms,
                              .cancel_fd = cancel_fd};
    ddffi_http_response resp = {0};
    ddffi_http_result r = send_with_retry(&req, OTLP_MAX_RETRIES, &resp);
    if (r != DDFFI_HTTP_OK)
      err = transport_error(r, &resp, true);
    else if (resp.status >= 400 && resp.status < 600)
      err = request_error(&resp);
    ddffi_buf_free(&resp.body);
  }
  ddffi_buf_free(&body);
  ddffi_url_free(&url);
  return err;
}

static ddog_TraceExporterError *export_chunks(const ddog_TraceExporter *x, ddog_TracerTraceChunks *chunks,
                                              const ddog_TraceExporterCancelToken *cancel, outcome *out) {
  if (cancel && atomic_load(&cancel->cancelled)) return cancelled_error();
  int cancel_fd = cancel ? cancel->fds[0] : -1;
  return x->otlp_endpoint ? send_otlp(x, chunks, cancel_fd) : send_v04(x, chunks, cancel_fd, out);
}

static ddog_TraceExporterError *respond(outcome *o, ddog_TraceExporterResponse **response_out) {
  if (!response_out) {
    ddffi_buf_free(&o->body);
    return NULL;
  }
  ddog_TraceExporterResponse *r = malloc(sizeof *r);
  if (!r) {
    ddffi_buf_free(&o->body);
    return ddffi_error(E(INTERNAL), "out of memory");
  }
  r->body = o->body;
  ddffi_live_inc();
  *response_out = r;
  return NULL;
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_send_trace_chunks(
    const ddog_TraceExporter *handle, ddog_TracerTraceChunks *chunks, ddog_TraceExporterResponse **response_out,
    const ddog_TraceExporterCancelToken *cancel_token) {
  if (!handle || !chunks) {
    ddog_tracer_trace_chunks_free(chunks); /* consumed on every path */
    return ddffi_error(E(INVALID_ARGUMENT), NULL);
  }
  outcome o = {0};
  ddog_TraceExporterError *err = export_chunks(handle, chunks, cancel_token, &o);
  ddog_tracer_trace_chunks_free(chunks);
  if (err) {
    ddffi_buf_free(&o.body);
    return err;
  }
  return respond(&o, response_out);
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_send(const ddog_TraceExporter *handle, ddog_ByteSlice trace,
                                                               ddog_TraceExporterResponse **response_out) {
  if (!handle) return ddffi_error(E(INVALID_ARGUMENT), NULL);
  /* libdatadog panics reading such a slice (caught: Panic) */
  if (!trace.ptr && trace.len) return ddffi_error(E(PANIC), NULL);
  /* libdatadog decodes the v0.4 payload and encodes it again */
  ddog_TracerTraceChunks *chunks = NULL;
  ddog_TraceExporterError *err = ddffi_decode_v04(trace.ptr, trace.len, &chunks);
  if (err) return err;
  outcome o = {0};
  err = export_chunks(handle, chunks, NULL, &o);
  ddog_tracer_trace_chunks_free(chunks);
  if (!err && o.changed && o.body.len == 0)
    err = ddffi_error(E(HTTP_EMPTY_BODY), "Agent response processing: Agent empty response");
  if (err) {
    ddffi_buf_free(&o.body);
    return err;
  }
  return respond(&o, response_out);
}
