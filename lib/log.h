/* libdatadog's own logs (libdd-log-ffi): the std-stream logger and its level,
 * with libdd-common-ffi's ddog_Error. Same names, values and layouts as
 * libdatadog v41's headers. */
#ifndef DDFFI_LOG_H
#define DDFFI_LOG_H

#include "data-pipeline.h"

/* libdd-log's LogEventLevel (repr(C)). */
typedef enum ddog_LogEventLevel {
  DDOG_LOG_EVENT_LEVEL_TRACE = 0,
  DDOG_LOG_EVENT_LEVEL_DEBUG = 1,
  DDOG_LOG_EVENT_LEVEL_INFO = 2,
  DDOG_LOG_EVENT_LEVEL_WARN = 3,
  DDOG_LOG_EVENT_LEVEL_ERROR = 4,
} ddog_LogEventLevel;

/* libdd-log's StdTarget (repr(C)). */
typedef enum ddog_StdTarget {
  DDOG_STD_TARGET_OUT = 0,
  DDOG_STD_TARGET_ERR = 1,
} ddog_StdTarget;

/* libdd-log-ffi's StdConfig, passed by value. */
typedef struct ddog_StdConfig {
  ddog_StdTarget target;
} ddog_StdConfig;

/* libdd-common-ffi's Vec<u8> and Error: opaque to callers. */
typedef struct ddog_Vec_U8 {
  const uint8_t *ptr;
  uintptr_t len;
  uintptr_t capacity;
} ddog_Vec_U8;

typedef struct ddog_Error {
  ddog_Vec_U8 message;
} ddog_Error;

/* Writes libdatadog's logs to stdout or stderr. NULL on success. */
ddog_Error *ddog_logger_configure_std(ddog_StdConfig config);
/* Stops the std-stream logs. NULL on success. */
ddog_Error *ddog_logger_disable_std(void);
/* The least severe level logged (default: none until configured). NULL on success; an error for a value out of range. */
ddog_Error *ddog_logger_set_log_level(ddog_LogEventLevel log_level);
/* Frees the message of an error (not the error itself, as in libdatadog). */
void ddog_Error_drop(ddog_Error *error);
/* The message of an error, valid until it is dropped. */
ddog_CharSlice ddog_Error_message(const ddog_Error *error);

/* ---- inside the library ------------------------------------------------ */

/* Whether a line of this level is written now. */
bool ddffi_log_enabled(ddog_LogEventLevel level);
/* Writes one log line (printf format) if the level is enabled. */
void ddffi_log(ddog_LogEventLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
