/*
 * A small blocking HTTP/1.1 client for the exporter: one connection per
 * request over TCP or a unix socket, non-blocking sockets and poll() so that
 * one deadline covers the whole request and a cancel fd can interrupt it.
 * Not part of the ABI.
 */
#ifndef DDFFI_HTTP_H
#define DDFFI_HTTP_H

#include "internal.h"

/* How a URL is reached, after libdatadog's parse_uri(). */
typedef enum ddffi_url_kind {
  DDFFI_URL_HTTP,      /* http://host[:port][/path] */
  DDFFI_URL_HTTPS,     /* https://…: TLS, which this library lacks */
  DDFFI_URL_UNIX,      /* unix:///path/to.sock */
  DDFFI_URL_FILE,      /* file:///path: requests are appended to the file */
  DDFFI_URL_OTHER,     /* another scheme: connecting fails, as in hyper */
  DDFFI_URL_RELATIVE,  /* "/path" without scheme and host */
  DDFFI_URL_AUTHORITY, /* "host:port" without scheme */
} ddffi_url_kind;

typedef struct ddffi_url {
  ddffi_url_kind kind;
  char *host;        /* TCP host for getaddrinfo (IPv6 without brackets) */
  char *port;        /* TCP port as a string ("80" when absent or invalid) */
  char *fs_path;     /* unix socket or file path */
  size_t fs_path_len; /* its length: a NUL inside makes it unusable */
  char *path;        /* path without query: "" when the URL has none */
  char *path_query;  /* request-target as given: path and query, "/" at least */
  char *host_header; /* Host header value, as hyper derives it */
} ddffi_url;

/* Parses a URL as libdatadog's parse_uri() (http::Uri) does. On failure
 * returns false and writes http::Uri's reason ("invalid format", ...). */
bool ddffi_url_parse(const char *s, size_t n, ddffi_url *out, char *err, size_t errlen);
void ddffi_url_free(ddffi_url *u);

typedef struct ddffi_http_header {
  const char *name;
  const char *value;
} ddffi_http_header;

typedef struct ddffi_http_request {
  const ddffi_url *url;
  const char *target; /* request-target, e.g. "/v0.4/traces" */
  const ddffi_http_header *headers;
  size_t header_count;
  const uint8_t *body;
  size_t body_len;
  uint64_t timeout_ms; /* for the whole request: resolve, connect, send, response */
  int cancel_fd;       /* readable once cancelled; -1 for none */
} ddffi_http_request;

typedef enum ddffi_http_result {
  DDFFI_HTTP_OK,             /* a response (any status) was read */
  DDFFI_HTTP_TIMED_OUT,      /* timeout_ms passed */
  DDFFI_HTTP_CANCELLED,      /* cancel_fd became readable */
  DDFFI_HTTP_CONNECT_FAILED, /* no connection: refused, DNS, no socket, bad scheme */
  DDFFI_HTTP_SEND_FAILED,    /* connected, but sending or the response head failed */
  DDFFI_HTTP_BODY_FAILED,    /* the response body could not be read */
  DDFFI_HTTP_BODY_TOO_LONG,  /* the response body is over DDFFI_HTTP_MAX_BODY */
  DDFFI_HTTP_OTHER_FAILED,   /* file:// endpoint could not be written; see error */
  DDFFI_HTTP_NO_ABSOLUTE,    /* the URL has no scheme and host */
} ddffi_http_result;

/* The largest response body read. libdatadog (v41) collects the whole body
 * with no bound; an agent answers a few hundred bytes of rate_by_service,
 * so 4 MiB is plenty and keeps a broken or hostile agent from filling the
 * memory with an endless answer. */
#define DDFFI_HTTP_MAX_BODY ((size_t)4 << 20)

typedef struct ddffi_http_response {
  int status;
  ddffi_buf body;
  char error[256]; /* details for DDFFI_HTTP_OTHER_FAILED and DDFFI_HTTP_CONNECT_FAILED ("" if none) */
} ddffi_http_response;

/* POSTs the request. On DDFFI_HTTP_OK, resp->status and resp->body are set
 * (free the body with ddffi_buf_free, also on failure). */
ddffi_http_result ddffi_http_post(const ddffi_http_request *req, ddffi_http_response *resp);

/* Sleeps ms milliseconds; returns false early if cancel_fd becomes readable. */
bool ddffi_http_sleep(uint64_t ms, int cancel_fd);

/* True when cancel_fd (if any) is readable. */
bool ddffi_http_cancelled(int cancel_fd);

#endif
