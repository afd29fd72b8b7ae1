/* A small blocking HTTP/1.1 client (see http.h). */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL /* macOS: SO_NOSIGPIPE on the socket instead */
#define MSG_NOSIGNAL 0
#endif

/* ---- URL parsing, after http::Uri::from_str and libdatadog's parse_uri ---- */

#define URI_MAX_LEN 65534 /* http::Uri's MAX_LEN */
#define MAX_SCHEME_LEN 64

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static char *dup_range(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static bool is_scheme_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '-' ||
         c == '.';
}

/* Characters http::Uri accepts in an authority (its URI_CHARS table). */
static bool is_authority_char(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c && strchr("!#$&'()*+,-./:;=?@[]_~", c) != NULL;
}

/* http::uri::Authority::parse: returns the authority's length or -1. */
static long parse_authority(const char *s, size_t n, char *err, size_t errlen) {
  int colons = 0;
  bool open = false, close = false, percent = false;
  long at = -1;
  size_t end = n;
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b == '/' || b == '?' || b == '#') {
      end = i;
      break;
    }
    if (!is_authority_char(b)) {
      if (b != '%') {
        set_err(err, errlen, "invalid uri character");
        return -1;
      }
      percent = true;
    } else if (b == ':') {
      if (colons >= 8) goto invalid;
      colons++;
    } else if (b == '[') {
      if (percent || open) goto invalid;
      open = true;
    } else if (b == ']') {
      if (!open || close) goto invalid;
      close = true;
      colons = 0;
      percent = false;
    } else if (b == '@') {
      at = (long)i;
      colons = 0;
      percent = false;
    }
  }
  if (open != close || colons > 1 || (end > 0 && at == (long)end - 1) || percent) goto invalid;
  return (long)end;
invalid:
  set_err(err, errlen, "invalid authority");
  return -1;
}

/* http::uri::PathAndQuery::from_shared: validates, strips the fragment.
 * Sets *path_len to the length of the path part. Returns the kept length or -1. */
static long parse_path_query(const char *s, size_t n, size_t *path_len, char *err, size_t errlen) {
  size_t i = 0;
  *path_len = n;
  for (; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b == '?') {
      *path_len = i;
      break;
    }
    if (b == '#') {
      *path_len = i;
      return (long)i;
    }
    bool ok = b == 0x21 || (b >= 0x24 && b <= 0x3B) || b == 0x3D || (b >= 0x40 && b <= 0x5F) ||
              (b >= 0x61 && b <= 0x7A) || b == 0x7C || b == 0x7E || b == '"' || b == '{' || b == '}' || b >= 0x80;
    if (!ok) goto bad;
  }
  for (i = i + 1; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b == '#') return (long)i;
    bool ok = b == 0x21 || (b >= 0x24 && b <= 0x3B) || b == 0x3D || (b >= 0x3F && b <= 0x7E) || b >= 0x80;
    if (!ok) goto bad;
  }
  return (long)n;
bad:
  set_err(err, errlen, "invalid uri character");
  return -1;
}

/* Fills host, port and host_header from an http(s) authority, as hyper does. */
static bool split_authority(ddffi_url *u, const char *a, size_t n, bool secure) {
  const char *hp = a;
  for (size_t i = n; i > 0; i--) {
    if (a[i - 1] == '@') {
      hp = a + i;
      break;
    }
  }
  size_t hpn = (size_t)(a + n - hp);
  size_t host_len = 0;
  if (hpn && hp[0] == '[') {
    while (host_len < hpn && hp[host_len] != ']') host_len++;
    host_len++; /* keep ']' */
  } else {
    while (host_len < hpn && hp[host_len] != ':') host_len++;
  }
  /* The port is what follows the last ':' of the authority, if it is a u16. */
  long port = -1;
  const char *colon = NULL;
  for (size_t i = n; i > 0; i--) {
    if (a[i - 1] == ':') {
      colon = a + i - 1;
      break;
    }
  }
  if (colon) {
    const char *p = colon + 1, *e = a + n;
    if (p < e && *p == '+') p++;
    if (p < e) {
      long v = 0;
      for (; p < e && *p >= '0' && *p <= '9' && v <= 65535; p++) v = v * 10 + (*p - '0');
      if (p == e && v <= 65535) port = v;
    }
  }
  const char *bare = hp;
  size_t bare_len = host_len;
  if (bare_len >= 2 && bare[0] == '[') {
    bare++;
    bare_len -= 2;
  }
  char buf[16];
  snprintf(buf, sizeof buf, "%ld", port >= 0 ? port : (secure ? 443 : 80));
  u->host = dup_range(bare, bare_len);
  u->port = strdup(buf);
  bool default_port = port < 0 || port == (secure ? 443 : 80);
  size_t hh = host_len + 8;
  u->host_header = malloc(hh);
  if (!u->host || !u->port || !u->host_header) return false;
  if (default_port)
    snprintf(u->host_header, hh, "%.*s", (int)host_len, hp);
  else
    snprintf(u->host_header, hh, "%.*s:%ld", (int)host_len, hp, port);
  return true;
}

static bool set_paths(ddffi_url *u, const char *pq, size_t n, size_t path_len) {
  u->path = path_len ? dup_range(pq, path_len) : strdup("/");
  u->path_query = n ? dup_range(pq, n) : strdup("/");
  return u->path && u->path_query;
}

/* "unix://", "file://", "windows:": the rest is a path, hex-encoded into the
 * authority by libdatadog (so hyper's Host header is that hex string). */
static bool parse_path_url(ddffi_url *u, ddffi_url_kind kind, const char *p, size_t n, char *err, size_t errlen) {
  if (n == 0) {
    set_err(err, errlen, "authority missing");
    return false;
  }
  u->kind = kind;
  u->fs_path = dup_range(p, n);
  u->fs_path_len = n;
  u->host_header = malloc(2 * n + 1);
  if (!u->fs_path || !u->host_header || !set_paths(u, "/", 1, 1)) {
    set_err(err, errlen, "out of memory");
    return false;
  }
  for (size_t i = 0; i < n; i++) sprintf(u->host_header + 2 * i, "%02x", (unsigned char)p[i]);
  return true;
}

bool ddffi_url_parse(const char *s, size_t n, ddffi_url *u, char *err, size_t errlen) {
  *u = (ddffi_url){0};
  bool ok = false;
  if (n >= 7 && !memcmp(s, "unix://", 7)) {
    ok = parse_path_url(u, DDFFI_URL_UNIX, s + 7, n - 7, err, errlen);
  } else if (n >= 8 && !memcmp(s, "windows:", 8)) {
    ok = parse_path_url(u, DDFFI_URL_OTHER, s + 8, n - 8, err, errlen);
  } else if (n >= 7 && !memcmp(s, "file://", 7)) {
    ok = parse_path_url(u, DDFFI_URL_FILE, s + 7, n - 7, err, errlen);
  } else if (n == 0) {
    set_err(err, errlen, "empty string");
  } else if (n > URI_MAX_LEN) {
    set_err(err, errlen, "uri too long");
  } else if (s[0] == '/' || (n == 1 && s[0] == '*')) {
    size_t path_len;
    long keep = s[0] == '*' ? 1 : parse_path_query(s, n, &path_len, err, errlen);
    if (s[0] == '*') path_len = 1;
    u->kind = DDFFI_URL_RELATIVE;
    ok = keep >= 0 && set_paths(u, s, (size_t)keep, path_len);
  } else {
    /* Scheme2::parse */
    size_t skip = 0;
    ddffi_url_kind kind = DDFFI_URL_AUTHORITY;
    if (n >= 7 && !strncasecmp(s, "http://", 7)) {
      kind = DDFFI_URL_HTTP;
      skip = 7;
    } else if (n >= 8 && !strncasecmp(s, "https://", 8)) {
      kind = DDFFI_URL_HTTPS;
      skip = 8;
    } else if (n > 3) {
      for (size_t i = 0; i < n; i++) {
        if (s[i] == ':') {
          if (n < i + 3 || s[i + 1] != '/' || s[i + 2] != '/') break;
          if (i > MAX_SCHEME_LEN) {
            set_err(err, errlen, "scheme too long");
            return false;
          }
          kind = DDFFI_URL_OTHER;
          skip = i + 3;
          break;
        }
        if (!is_scheme_char((unsigned char)s[i])) break;
      }
    }
    const char *rest = s + skip;
    size_t rn = n - skip;
    long auth = parse_authority(rest, rn, err, errlen);
    if (auth < 0) return false;
    if (kind == DDFFI_URL_AUTHORITY) {
      if ((size_t)auth != rn) {
        set_err(err, errlen, "invalid format");
        return false;
      }
      u->kind = kind;
      ok = set_paths(u, "", 0, 0);
    } else if (auth == 0) {
      set_err(err, errlen, "invalid format");
      return false;
    } else {
      size_t path_len;
      long keep = parse_path_query(rest + auth, rn - (size_t)auth, &path_len, err, errlen);
      if (keep < 0) return false;
      u->kind = kind;
      ok = set_paths(u, rest + auth, (size_t)keep, path_len) &&
           (kind == DDFFI_URL_OTHER || split_authority(u, rest, (size_t)auth, kind == DDFFI_URL_HTTPS));
      if (!ok) set_err(err, errlen, "out of memory");
    }
  }
  if (!ok) ddffi_url_free(u);
  return ok;
}

void ddffi_url_free(ddffi_url *u) {
  free(u->host);
  free(u->port);
  free(u->fs_path);
  free(u->path);
  free(u->path_query);
  free(u->host_header);
  *u = (ddffi_url){0};
}

/* ---- waiting ------------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef enum { WAIT_READY, WAIT_TIMEOUT, WAIT_CANCELLED } wait_result;

/* Waits until fd has `events` (fd < 0: just sleeps), the deadline passes or
 * cancel_fd becomes readable. */
static wait_result wait_fd(int fd, short events, int64_t deadline, int cancel_fd) {
  for (;;) {
    struct pollfd p[2];
    nfds_t np = 0;
    if (cancel_fd >= 0) p[np++] = (struct pollfd){.fd = cancel_fd, .events = POLLIN};
    if (fd >= 0) p[np++] = (struct pollfd){.fd = fd, .events = events};
    int64_t left = deadline - now_ms();
    if (left < 0) left = 0;
    int r = poll(p, np, left > 1000000 ? 1000000 : (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (cancel_fd >= 0 && r > 0 && (p[0].revents & POLLIN)) return WAIT_CANCELLED;
    if (r > 0 && fd >= 0) return WAIT_READY; /* also POLLERR/POLLHUP: the next call reports it */
    if (now_ms() >= deadline) return WAIT_TIMEOUT;
  }
}

bool ddffi_http_cancelled(int cancel_fd) {
  if (cancel_fd < 0) return false;
  struct pollfd p = {.fd = cancel_fd, .events = POLLIN};
  return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

bool ddffi_http_sleep(uint64_t ms, int cancel_fd) {
  return wait_fd(-1, 0, now_ms() + (int64_t)ms, cancel_fd) != WAIT_CANCELLED;
}

static ddffi_http_result from_wait(wait_result w) {
  return w == WAIT_TIMEOUT ? DDFFI_HTTP_TIMED_OUT : DDFFI_HTTP_CANCELLED;
}

/* Between reads or writes that did not block: the deadline and the cancel
 * fd still apply (a peer that streams without pause never makes us wait). */
static ddffi_http_result check_time(int64_t deadline, int cancel_fd) {
  if (ddffi_http_cancelled(cancel_fd)) return DDFFI_HTTP_CANCELLED;
  if (now_ms() >= deadline) return DDFFI_HTTP_TIMED_OUT;
  return DDFFI_HTTP_OK;
}

/* ---- resolving ---------------------------------------------------------------- */

/* getaddrinfo() blocks and cannot be interrupted, so a host name is resolved
 * on a detached thread while the caller waits on a pipe with the deadline and
 * the cancel fd; whichever side finishes last frees the job. (hyper resolves
 * on a blocking thread too, and its request future is dropped on timeout.) */
typedef struct resolve_job {
  atomic_int refs;
  atomic_bool done;
  int fds[2];
  char *host, *port;
  struct addrinfo *res;
  int rc;
} resolve_job;

static void job_release(resolve_job *j) {
  if (atomic_fetch_sub(&j->refs, 1) != 1) return;
  if (j->res) freeaddrinfo(j->res);
  close(j->fds[0]);
  close(j->fds[1]);
  free(j->host);
  free(j->port);
  free(j);
}

static const struct addrinfo resolve_hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

static void *resolve_thread(void *arg) {
  resolve_job *j = arg;
  j->rc = getaddrinfo(j->host, j->port, &resolve_hints, &j->res);
  atomic_store_explicit(&j->done, true, memory_order_release);
  ssize_t w = write(j->fds[1], "x", 1);
  (void)w;
  job_release(j);
  return NULL;
}

/* Resolves host:port like hyper's resolver (every address, in order). */
static ddffi_http_result resolve(const char *host, const char *port, int64_t deadline, int cancel_fd,
                                 struct addrinfo **out) {
  *out = NULL;
  struct addrinfo numeric = resolve_hints;
  numeric.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (getaddrinfo(host, port, &numeric, out) == 0) return DDFFI_HTTP_OK; /* an IP address: nothing to wait for */
  *out = NULL;
  resolve_job *j = calloc(1, sizeof *j);
  pthread_attr_t attr;
  pthread_t tid;
  bool started = false;
  if (j && pipe(j->fds) == 0) {
    fcntl(j->fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(j->fds[1], F_SETFD, FD_CLOEXEC);
    j->host = strdup(host);
    j->port = strdup(port);
    atomic_init(&j->refs, 2);
    if (j->host && j->port && pthread_attr_init(&attr) == 0) {
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      started = pthread_create(&tid, &attr, resolve_thread, j) == 0;
      pthread_attr_destroy(&attr);
    }
    if (!started) {
      atomic_init(&j->refs, 1);
      job_release(j);
    }
  } else {
    free(j);
  }
  if (!started) /* no thread: resolve here */
    return getaddrinfo(host, port, &resolve_hints, out) == 0 ? DDFFI_HTTP_OK : DDFFI_HTTP_CONNECT_FAILED;
  wait_result w = wait_fd(j->fds[0], POLLIN, deadline, cancel_fd);
  ddffi_http_result r;
  if (w == WAIT_READY && atomic_load_explicit(&j->done, memory_order_acquire)) {
    r = j->rc == 0 ? DDFFI_HTTP_OK : DDFFI_HTTP_CONNECT_FAILED;
    *out = j->res;
    j->res = NULL;
  } else {
    r = w == WAIT_READY ? DDFFI_HTTP_CONNECT_FAILED : from_wait(w);
  }
  job_release(j);
  return r;
}

/* ---- connecting --------------------------------------------------------------- */

/* Connects a fresh non-blocking socket to addr; *fd is -1 if it failed. */
/* A non-blocking, close-on-exec stream socket that never raises SIGPIPE. */
static int new_socket(int family) {
#ifdef SOCK_CLOEXEC
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  if (fd < 0) return -1;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return fd;
}

static ddffi_http_result connect_addr(int family, const struct sockaddr *addr, socklen_t len, int64_t deadline,
                                      int cancel_fd, int *fd) {
  *fd = new_socket(family);
  if (*fd < 0) return DDFFI_HTTP_CONNECT_FAILED;
  if (connect(*fd, addr, len) == 0) return DDFFI_HTTP_OK;
  if (errno == EINPROGRESS) {
    wait_result w = wait_fd(*fd, POLLOUT, deadline, cancel_fd);
    if (w != WAIT_READY) {
      close(*fd);
      *fd = -1;
      return from_wait(w);
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(*fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) return DDFFI_HTTP_OK;
  }
  close(*fd);
  *fd = -1;
  return DDFFI_HTTP_CONNECT_FAILED;
}

static ddffi_http_result open_connection(const ddffi_url *u, int64_t deadline, int cancel_fd, int *fd,
                                         ddffi_http_response *resp) {
  *fd = -1;
  if (u->kind == DDFFI_URL_UNIX) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = u->fs_path_len;
    /* Rust's UnixStream::connect refuses both (InvalidInput); say which. */
    if (memchr(u->fs_path, 0, n)) {
      snprintf(resp->error, sizeof resp->error, "the unix socket path contains a NUL byte");
      return DDFFI_HTTP_CONNECT_FAILED;
    }
    if (n >= sizeof sa.sun_path) {
      snprintf(resp->error, sizeof resp->error, "the unix socket path is %zu bytes, over the %zu this OS allows", n,
               sizeof sa.sun_path - 1);
      return DDFFI_HTTP_CONNECT_FAILED;
    }
    memcpy(sa.sun_path, u->fs_path, n);
    return connect_addr(AF_UNIX, (struct sockaddr *)&sa, sizeof sa, deadline, cancel_fd, fd);
  }
  if (u->kind != DDFFI_URL_HTTP || !u->host[0]) return DDFFI_HTTP_CONNECT_FAILED; /* hyper: "scheme is not http" */
  struct addrinfo *res = NULL;
  ddffi_http_result r = resolve(u->host, u->port, deadline, cancel_fd, &res);
  if (r != DDFFI_HTTP_OK) return r;
  r = DDFFI_HTTP_CONNECT_FAILED;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    r = connect_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline, cancel_fd, fd);
    if (r != DDFFI_HTTP_CONNECT_FAILED) break;
  }
  freeaddrinfo(res);
  return r;
}

/* ---- sending ------------------------------------------------------------------ */

static ddffi_http_result send_all(int fd, const uint8_t *p, size_t n, int64_t deadline, int cancel_fd) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      ddffi_http_result t = n ? check_time(deadline, cancel_fd) : DDFFI_HTTP_OK;
      if (t != DDFFI_HTTP_OK) return t;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_result r = wait_fd(fd, POLLOUT, deadline, cancel_fd);
      if (r != WAIT_READY) return from_wait(r);
    } else if (!(w < 0 && errno == EINTR)) {
      return DDFFI_HTTP_SEND_FAILED;
    }
  }
  return DDFFI_HTTP_OK;
}

static void put_str(ddffi_buf *b, const char *s) { ddffi_buf_put(b, s, strlen(s)); }

/* The request-target with every byte outside visible ASCII percent-encoded
 * (http::Uri keeps a non-ASCII path as raw UTF-8; on the wire it must be
 * ASCII, as RFC 3986 and the agent expect). */
static void put_target(ddffi_buf *b, const char *t) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
    if (*p > 0x20 && *p < 0x7f) {
      ddffi_buf_put(b, p, 1);
    } else {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      ddffi_buf_put(b, e, 3);
    }
  }
}

static void build_head(const ddffi_http_request *req, ddffi_buf *head) {
  char num[32];
  put_str(head, "POST ");
  put_target(head, req->target);
  put_str(head, " HTTP/1.1\r\n");
  for (size_t i = 0; i < req->header_count; i++) {
    put_str(head, req->headers[i].name);
    put_str(head, ": ");
    put_str(head, req->headers[i].value);
    put_str(head, "\r\n");
  }
  /* hyper adds these two after the caller's headers */
  put_str(head, "host: ");
  put_str(head, req->url->host_header);
  snprintf(num, sizeof num, "\r\ncontent-length: %zu\r\n\r\n", req->body_len);
  put_str(head, num);
}

/* ---- receiving ---------------------------------------------------------------- */

#define MAX_HEAD 65536

typedef struct reader {
  int fd;
  int64_t deadline;
  int cancel_fd;
  ddffi_buf in; /* received, not yet consumed: in.data[pos..len] */
  size_t pos;
  bool eof;
} reader;

/* Reads more bytes into r->in. DDFFI_HTTP_OK with r->eof at end of stream;
 * DDFFI_HTTP_SEND_FAILED for a socket error (the caller reclassifies). */
static ddffi_http_result fill(reader *r) {
  if (r->pos && r->pos == r->in.len) r->pos = r->in.len = 0;
  for (;;) {
    ddffi_buf_reserve(&r->in, 16384);
    if (r->in.failed) return DDFFI_HTTP_SEND_FAILED;
    ssize_t n = recv(r->fd, r->in.data + r->in.len, r->in.cap - r->in.len, 0);
    if (n > 0) {
      r->in.len += (size_t)n;
      return check_time(r->deadline, r->cancel_fd);
    }
    if (n == 0) {
      r->eof = true;
      return DDFFI_HTTP_OK;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return DDFFI_HTTP_SEND_FAILED;
    wait_result w = wait_fd(r->fd, POLLIN, r->deadline, r->cancel_fd);
    if (w != WAIT_READY) return from_wait(w);
  }
}

static size_t avail(const reader *r) { return r->in.len - r->pos; }
static const char *cur(const reader *r) { return (const char *)r->in.data + r->pos; }

/* Finds "\r\n" in the unread bytes from `from`; returns its offset or -1. */
static long find_crlf(const reader *r, size_t from) {
  for (size_t i = from; i + 1 < avail(r); i++)
    if (cur(r)[i] == '\r' && cur(r)[i + 1] == '\n') return (long)i;
  return -1;
}

/* Reads one CRLF-terminated line (without CRLF) of at most max bytes. */
static ddffi_http_result read_line(reader *r, size_t max, const char **line, size_t *len, ddffi_http_result fail) {
  for (;;) {
    long at = find_crlf(r, 0);
    if (at >= 0) {
      *line = cur(r);
      *len = (size_t)at;
      r->pos += (size_t)at + 2;
      return DDFFI_HTTP_OK;
    }
    if (avail(r) > max || r->eof) return fail;
    ddffi_http_result f = fill(r);
    if (f == DDFFI_HTTP_SEND_FAILED) return fail;
    if (f != DDFFI_HTTP_OK) return f;
  }
}

static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen) {
  size_t n = strlen(name);
  if (len <= n || line[n] != ':' || strncasecmp(line, name, n)) return false;
  const char *v = line + n + 1, *e = line + len;
  while (v < e && (*v == ' ' || *v == '\t')) v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
  *value = v;
  *vlen = (size_t)(e - v);
  return true;
}

typedef struct head_info {
  int status;
  bool chunked;
  bool has_length;
  uint64_t length;
} head_info;

/* Reads the status line and headers; skips 1xx interim responses as hyper does. */
static ddffi_http_result read_head(reader *r, head_info *h) {
  for (;;) {
    *h = (head_info){0};
    const char *line;
    size_t len;
    ddffi_http_result res = read_line(r, MAX_HEAD, &line, &len, DDFFI_HTTP_SEND_FAILED);
    if (res != DDFFI_HTTP_OK) return res;
    if (len < 12 || strncmp(line, "HTTP/1.", 7) || line[8] != ' ') return DDFFI_HTTP_SEND_FAILED;
    for (int i = 9; i < 12; i++) {
      if (line[i] < '0' || line[i] > '9') return DDFFI_HTTP_SEND_FAILED;
      h->status = h->status * 10 + (line[i] - '0');
    }
    if (h->status < 100 || (len > 12 && line[12] != ' ')) return DDFFI_HTTP_SEND_FAILED;
    for (;;) {
      res = read_line(r, MAX_HEAD, &line, &len, DDFFI_HTTP_SEND_FAILED);
      if (res != DDFFI_HTTP_OK) return res;
      if (len == 0) break;
      const char *v;
      size_t vn;
      if (header_is(line, len, "content-length", &v, &vn)) {
        uint64_t n = 0;
        if (vn == 0 || vn > 19) return DDFFI_HTTP_SEND_FAILED;
        for (size_t i = 0; i < vn; i++) {
          if (v[i] < '0' || v[i] > '9') return DDFFI_HTTP_SEND_FAILED;
          n = n * 10 + (uint64_t)(v[i] - '0');
        }
        if (h->has_length && h->length != n) return DDFFI_HTTP_SEND_FAILED;
        h->has_length = true;
        h->length = n;
      } else if (header_is(line, len, "transfer-encoding", &v, &vn)) {
        /* chunked must be the last coding */
        h->chunked = vn >= 7 && !strncasecmp(v + vn - 7, "chunked", 7);
      }
    }
    if (h->status >= 200 || h->status == 101) return DDFFI_HTTP_OK;
  }
}

/* Moves n unread bytes (reading more as needed) into out, which may not
 * grow past DDFFI_HTTP_MAX_BODY. */
static ddffi_http_result take(reader *r, uint64_t n, ddffi_buf *out) {
  if (n > DDFFI_HTTP_MAX_BODY - out->len) return DDFFI_HTTP_BODY_TOO_LONG;
  while (n) {
    if (!avail(r)) {
      if (r->eof) return DDFFI_HTTP_BODY_FAILED;
      ddffi_http_result f = fill(r);
      if (f == DDFFI_HTTP_SEND_FAILED) return DDFFI_HTTP_BODY_FAILED;
      if (f != DDFFI_HTTP_OK) return f;
      continue;
    }
    size_t k = avail(r) < n ? avail(r) : (size_t)n;
    ddffi_buf_put(out, cur(r), k);
    if (out->failed) return DDFFI_HTTP_BODY_FAILED;
    r->pos += k;
    n -= k;
  }
  return DDFFI_HTTP_OK;
}

static ddffi_http_result read_chunked(reader *r, ddffi_buf *out) {
  for (;;) {
    const char *line;
    size_t len;
    ddffi_http_result res = read_line(r, 4096, &line, &len, DDFFI_HTTP_BODY_FAILED);
    if (res != DDFFI_HTTP_OK) return res;
    uint64_t size = 0;
    size_t i = 0;
    for (; i < len && i < 16; i++) {
      char c = line[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) break;
      size = size * 16 + (uint64_t)d;
    }
    if (i == 0 || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) return DDFFI_HTTP_BODY_FAILED;
    if (size == 0) break;
    res = take(r, size, out);
    if (res != DDFFI_HTTP_OK) return res;
    res = read_line(r, 16, &line, &len, DDFFI_HTTP_BODY_FAILED);
    if (res != DDFFI_HTTP_OK) return res;
    if (len) return DDFFI_HTTP_BODY_FAILED;
  }
  for (;;) { /* trailers, up to the empty line */
    const char *line;
    size_t len;
    ddffi_http_result res = read_line(r, MAX_HEAD, &line, &len, DDFFI_HTTP_BODY_FAILED);
    if (res != DDFFI_HTTP_OK) return res;
    if (!len) return DDFFI_HTTP_OK;
  }
}

static ddffi_http_result read_response(reader *r, ddffi_http_response *resp) {
  head_info h;
  ddffi_http_result res = read_head(r, &h);
  if (res != DDFFI_HTTP_OK) return res;
  resp->status = h.status;
  if (h.status == 204 || h.status == 304 || h.status == 101) return DDFFI_HTTP_OK;
  if (h.chunked) return read_chunked(r, &resp->body);
  if (h.has_length) return take(r, h.length, &resp->body);
  for (;;) { /* until the server closes */
    if (avail(r) > DDFFI_HTTP_MAX_BODY - resp->body.len) return DDFFI_HTTP_BODY_TOO_LONG;
    ddffi_buf_put(&resp->body, cur(r), avail(r));
    r->pos = r->in.len;
    if (resp->body.failed) return DDFFI_HTTP_BODY_FAILED;
    if (r->eof) return DDFFI_HTTP_OK;
    res = fill(r);
    if (res == DDFFI_HTTP_SEND_FAILED) return DDFFI_HTTP_BODY_FAILED;
    if (res != DDFFI_HTTP_OK) return res;
  }
}

/* ---- file:// endpoints (libdatadog's on-disk recorder) ------------------------ */

static ddffi_http_result write_file(const ddffi_http_request *req, ddffi_http_response *resp) {
  static _Atomic uint64_t seq;
  const char *path = req->url->fs_path;
  size_t n = strlen(path);
  struct stat st;
  char file[4096];
  bool dir = (n && path[n - 1] == '/') || (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  int fd;
  if (dir) {
    /* One file per request, ordinal first; written then renamed. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    mkdir(path, 0777);
    snprintf(file, sizeof file, "%s/telemetry-%020llu-%d-%lld%09ld.json", path, (unsigned long long)seq++,
             (int)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    bool ok = fd >= 0 && write(fd, req->body, req->body_len) == (ssize_t)req->body_len;
    if (fd >= 0) close(fd);
    if (!ok || rename(tmp, file) != 0) {
      snprintf(resp->error, sizeof resp->error, "writing \"%.200s\": %s (os error %d)", tmp, strerror(errno), errno);
      return DDFFI_HTTP_OTHER_FAILED;
    }
  } else {
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) {
      snprintf(resp->error, sizeof resp->error, "opening \"%.200s\": %s (os error %d)", path, strerror(errno), errno);
      return DDFFI_HTTP_OTHER_FAILED;
    }
    uint8_t *rec = malloc(req->body_len + 1);
    bool ok = rec != NULL;
    if (ok) {
      if (req->body_len) memcpy(rec, req->body, req->body_len);
      rec[req->body_len] = '\n';
      ok = write(fd, rec, req->body_len + 1) == (ssize_t)(req->body_len + 1);
    }
    free(rec);
    close(fd);
    if (!ok) {
      snprintf(resp->error, sizeof resp->error, "writing \"%.200s\": %s (os error %d)", path, strerror(errno), errno);
      return DDFFI_HTTP_OTHER_FAILED;
    }
  }
  resp->status = 202;
  return DDFFI_HTTP_OK;
}

/* ---- the request -------------------------------------------------------------- */

ddffi_http_result ddffi_http_post(const ddffi_http_request *req, ddffi_http_response *resp) {
  resp->status = 0;
  resp->error[0] = 0;
  ddffi_buf_free(&resp->body);
  if (req->url->kind == DDFFI_URL_FILE) return write_file(req, resp);
  if (req->url->kind == DDFFI_URL_RELATIVE || req->url->kind == DDFFI_URL_AUTHORITY) return DDFFI_HTTP_NO_ABSOLUTE;

  int64_t deadline = now_ms() + (int64_t)(req->timeout_ms > INT64_MAX / 4 ? INT64_MAX / 4 : req->timeout_ms);
  if (ddffi_http_cancelled(req->cancel_fd)) return DDFFI_HTTP_CANCELLED;
  if (req->timeout_ms == 0) return DDFFI_HTTP_TIMED_OUT; /* a zero timer fires before any I/O */

  int fd;
  ddffi_http_result res = open_connection(req->url, deadline, req->cancel_fd, &fd, resp);
  if (res != DDFFI_HTTP_OK) return res;

  ddffi_buf head = {0};
  build_head(req, &head);
  if (head.failed)
    res = DDFFI_HTTP_SEND_FAILED;
  else
    res = send_all(fd, head.data, head.len, deadline, req->cancel_fd);
  ddffi_buf_free(&head);
  if (res == DDFFI_HTTP_OK) res = send_all(fd, req->body, req->body_len, deadline, req->cancel_fd);

  if (res == DDFFI_HTTP_OK) {
    reader r = {.fd = fd, .deadline = deadline, .cancel_fd = req->cancel_fd};
    res = read_response(&r, resp);
    ddffi_buf_free(&r.in);
  }
  close(fd);
  return res;
}
