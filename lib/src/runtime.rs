//! `ddog_SharedRuntime`: one libdatadog runtime (its worker threads) for the
//! background work of several exporters, and the exporters' runtime type.

use crate::abi::SharedRuntimeErrorCode;
use crate::ffi::{catch_or, take, try_ref, write_out};
use libdd_shared_runtime::{SharedRuntime, SharedRuntimeError};
use std::ffi::{c_char, CString};
use std::sync::Arc;
use std::time::Duration;

/// The runtime an exporter's background workers and blocking sends run on:
/// libdatadog's fork-safe runtime, as its own FFI uses.
pub type Runtime = libdd_shared_runtime::ForkSafeRuntime;

/// A shared runtime handle: one reference to the runtime (a config given it
/// takes its own).
pub type SharedRuntimeHandle = Arc<Runtime>;

/// `ddog_SharedRuntimeFFIError`: `{ int32 code; char *msg; }`.
#[repr(C)]
pub struct SharedRuntimeFfiError {
    pub code: SharedRuntimeErrorCode,
    pub msg: *mut c_char,
}

fn runtime_error(code: SharedRuntimeErrorCode, message: String) -> *mut SharedRuntimeFfiError {
    let msg = CString::new(message.replace('\0', "\\0"))
        .unwrap_or_default()
        .into_raw();
    crate::ffi::into_handle(SharedRuntimeFfiError { code, msg })
}

fn from_error(e: SharedRuntimeError) -> *mut SharedRuntimeFfiError {
    let code = match &e {
        SharedRuntimeError::RuntimeUnavailable => SharedRuntimeErrorCode::RuntimeUnavailable,
        SharedRuntimeError::LockFailed(_) => SharedRuntimeErrorCode::LockFailed,
        SharedRuntimeError::WorkerError(_) => SharedRuntimeErrorCode::WorkerError,
        SharedRuntimeError::RuntimeCreation(_) => SharedRuntimeErrorCode::RuntimeCreation,
        SharedRuntimeError::ShutdownTimedOut(_) => SharedRuntimeErrorCode::ShutdownTimedOut,
    };
    runtime_error(code, e.to_string())
}

/// The runtime boundary's panic catcher: a panic becomes error code Panic.
fn catch_runtime(f: impl FnOnce() -> *mut SharedRuntimeFfiError) -> *mut SharedRuntimeFfiError {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        runtime_error(
            SharedRuntimeErrorCode::Panic,
            "panic in the native library".into(),
        )
    })
}

/// # Safety
/// `out` must be writable for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ddog_shared_runtime_new(
    out: *mut *mut SharedRuntimeHandle,
) -> *mut SharedRuntimeFfiError {
    catch_runtime(|| match Runtime::new() {
        // SAFETY: the caller's contract.
        Ok(rt) => match unsafe { write_out(out, Arc::new(rt), "shared_runtime_new") } {
            Ok(()) => std::ptr::null_mut(),
            Err(e) => runtime_error(SharedRuntimeErrorCode::InvalidArgument, e.message),
        },
        Err(e) => from_error(e),
    })
}

/// Drops this handle's reference.
///
/// # Safety
/// `handle` NULL or a shared runtime handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_shared_runtime_free(handle: *mut SharedRuntimeHandle) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(handle) }))
}

/// Stops the runtime's workers, waiting at most `timeout_ms` (0: no limit).
///
/// # Safety
/// `handle` NULL or a shared runtime handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_shared_runtime_shutdown(
    handle: *const SharedRuntimeHandle,
    timeout_ms: u64,
) -> *mut SharedRuntimeFfiError {
    catch_runtime(|| {
        // SAFETY: the caller's contract.
        let rt = match unsafe { try_ref(handle, "shared runtime") } {
            Ok(rt) => rt,
            Err(e) => return runtime_error(SharedRuntimeErrorCode::InvalidArgument, e.message),
        };
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        match rt.shutdown(timeout) {
            Ok(()) => std::ptr::null_mut(),
            Err(e) => from_error(e),
        }
    })
}

/// # Safety
/// `error` NULL or a shared runtime error, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_shared_runtime_error_free(error: *mut SharedRuntimeFfiError) {
    catch_or((), || {
        // SAFETY: the caller's contract.
        if let Some(e) = unsafe { take(error) } {
            if !e.msg.is_null() {
                // SAFETY: made by CString::into_raw in runtime_error.
                drop(unsafe { CString::from_raw(e.msg) });
            }
        }
    })
}

/// Gives a config a reference to the runtime.
///
/// # Safety
/// `config` NULL or a config handle; `handle` NULL or a shared runtime handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_shared_runtime(
    config: *mut crate::config::Config,
    handle: *const SharedRuntimeHandle,
) -> *mut crate::ffi::ExporterError {
    crate::ffi::catch(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { crate::ffi::try_mut(config, "config")? };
        // SAFETY: the caller's contract.
        let rt = unsafe { try_ref(handle, "shared runtime")? };
        c.shared_runtime = Some(rt.clone());
        Ok(())
    })
}
