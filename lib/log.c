/* libdatadog's own logs: a line per event on stdout or stderr, from the
 * level set with ddog_logger_set_log_level. Nothing is logged until
 * ddog_logger_configure_std is called, as in libdatadog. */
#include "internal.h"
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DDFFI_LOG_OFF (-1)

static _Atomic int log_target = DDFFI_LOG_OFF; /* a ddog_StdTarget, or off */
static _Atomic int log_level = DDOG_LOG_EVENT_LEVEL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static ddog_Error *new_error(const char *msg) {
  ddog_Error *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  size_t n = strlen(msg);
  uint8_t *p = malloc(n);
  if (p) {
    memcpy(p, msg, n);
    e->message = (ddog_Vec_U8){p, n, n};
  }
  return e;
}

DDFFI_EXPORT ddog_Error *ddog_logger_configure_std(ddog_StdConfig config) {
  if (config.target != DDOG_STD_TARGET_OUT && config.target != DDOG_STD_TARGET_ERR)
    return new_error("Invalid std target");
  log_target = (int)config.target;
  return NULL;
}

DDFFI_EXPORT ddog_Error *ddog_logger_disable_std(void) {
  log_target = DDFFI_LOG_OFF;
  return NULL;
}

DDFFI_EXPORT ddog_Error *ddog_logger_set_log_level(ddog_LogEventLevel level) {
  int v = (int)level;
  if (v < DDOG_LOG_EVENT_LEVEL_TRACE || v > DDOG_LOG_EVENT_LEVEL_ERROR) return new_error("Invalid log level");
  log_level = v;
  return NULL;
}

DDFFI_EXPORT void ddog_Error_drop(ddog_Error *error) {
  if (!error) return;
  free((void *)error->message.ptr);
  error->message = (ddog_Vec_U8){0};
}

DDFFI_EXPORT ddog_CharSlice ddog_Error_message(const ddog_Error *error) {
  if (!error || !error->message.ptr) return (ddog_CharSlice){.ptr = NULL, .len = 0};
  return (ddog_CharSlice){.ptr = (const char *)error->message.ptr, .len = error->message.len};
}

bool ddffi_log_enabled(ddog_LogEventLevel level) {
  return log_target != DDFFI_LOG_OFF && (int)level >= log_level;
}

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};

void ddffi_log(ddog_LogEventLevel level, const char *fmt, ...) {
  if (!ddffi_log_enabled(level)) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  FILE *out = log_target == DDOG_STD_TARGET_OUT ? stdout : stderr;
  pthread_mutex_lock(&log_lock);
  fprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %5s libdatadog: %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
          tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, level_names[level], msg);
  fflush(out);
  pthread_mutex_unlock(&log_lock);
}
