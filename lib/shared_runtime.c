/* The shared runtime of libdd-shared-runtime-ffi. libdatadog's is a tokio
 * runtime behind an Arc that exporters set with
 * ddog_trace_exporter_config_set_shared_runtime run their background workers
 * on; the bundled library has no background workers (it sends on the calling
 * thread), so here it is the Arc alone: a reference count, one live object
 * until the last reference goes, and a shutdown that has nothing to stop. As
 * in libdatadog, an exporter still sends after the shutdown. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "exporter.h"

struct ddog_SharedRuntime {
  atomic_size_t refs;
};

static ddog_SharedRuntimeFFIError *runtime_error(ddog_SharedRuntimeErrorCode code, const char *msg) {
  ddog_SharedRuntimeFFIError *e = malloc(sizeof *e);
  if (!e) return NULL;
  e->code = code;
  e->msg = strdup(msg);
  if (!e->msg) {
    free(e);
    return NULL;
  }
  ddffi_live_inc();
  return e;
}

const ddog_SharedRuntime *ddffi_shared_runtime_retain(const ddog_SharedRuntime *rt) {
  if (rt) atomic_fetch_add(&((ddog_SharedRuntime *)rt)->refs, 1);
  return rt;
}

void ddffi_shared_runtime_release(const ddog_SharedRuntime *rt) {
  if (!rt || atomic_fetch_sub(&((ddog_SharedRuntime *)rt)->refs, 1) != 1) return;
  free((ddog_SharedRuntime *)rt);
  ddffi_live_dec();
}

DDFFI_EXPORT ddog_SharedRuntimeFFIError *ddog_shared_runtime_new(const ddog_SharedRuntime **out_handle) {
  ddog_SharedRuntime *rt = malloc(sizeof *rt);
  if (!rt) return runtime_error(DDOG_SHARED_RUNTIME_ERROR_CODE_RUNTIME_CREATION, "Failed to create runtime: out of memory");
  atomic_init(&rt->refs, 1);
  ddffi_live_inc();
  *out_handle = rt;
  return NULL;
}

DDFFI_EXPORT void ddog_shared_runtime_free(const ddog_SharedRuntime *handle) { ddffi_shared_runtime_release(handle); }

DDFFI_EXPORT ddog_SharedRuntimeFFIError *ddog_shared_runtime_shutdown(const ddog_SharedRuntime *handle, uint64_t timeout_ms) {
  (void)timeout_ms;
  if (!handle) return runtime_error(DDOG_SHARED_RUNTIME_ERROR_CODE_INVALID_ARGUMENT, "handle is null");
  return NULL;
}

DDFFI_EXPORT void ddog_shared_runtime_error_free(ddog_SharedRuntimeFFIError *error) {
  if (!error) return;
  free(error->msg);
  free(error);
  ddffi_live_dec();
}

DDFFI_EXPORT ddog_TraceExporterError *ddog_trace_exporter_config_set_shared_runtime(ddog_TraceExporterConfig *config,
                                                                                  const ddog_SharedRuntime *handle) {
  if (!config || !handle) return ddffi_error(DDOG_TRACE_EXPORTER_ERROR_CODE_INVALID_ARGUMENT, NULL);
  ddffi_shared_runtime_release(config->shared_runtime);
  config->shared_runtime = ddffi_shared_runtime_retain(handle);
  return NULL;
}
