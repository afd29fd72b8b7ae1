//! libdatadog's own logs (`ddog_logger_configure_std`, `ddog_logger_set_log_level`,
//! the API of libdd-log-ffi): the `tracing` events of libdatadog's crates,
//! written to stdout or stderr by `tracing-subscriber`.

use crate::ffi::catch_or;
use std::ffi::c_char;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{fmt, reload, Registry};

/// `ddog_Error`: a message, read with `ddog_Error_message`, freed with `ddog_Error_drop`.
pub struct LogError(String);

/// Where the lines go: 0 nowhere, 1 stdout, 2 stderr (`ddog_StdTarget` + 1).
static TARGET: AtomicU8 = AtomicU8::new(0);
static FILTER: OnceLock<reload::Handle<LevelFilter, Registry>> = OnceLock::new();

fn error(message: &str) -> *mut LogError {
    Box::into_raw(Box::new(LogError(message.into())))
}

/// Installs the subscriber once (off until a level is set).
fn filter() -> Option<&'static reload::Handle<LevelFilter, Registry>> {
    let handle = FILTER.get_or_init(|| {
        let (level, handle) = reload::Layer::new(LevelFilter::OFF);
        let writer = || -> Box<dyn std::io::Write> {
            match TARGET.load(Ordering::Relaxed) {
                1 => Box::new(std::io::stdout()),
                2 => Box::new(std::io::stderr()),
                _ => Box::new(std::io::sink()),
            }
        };
        let subscriber = Registry::default()
            .with(level)
            .with(fmt::layer().with_ansi(false).with_writer(writer));
        let _ = tracing::subscriber::set_global_default(subscriber);
        handle
    });
    Some(handle)
}

/// Writes libdatadog's logs to stdout (0) or stderr (1).
#[no_mangle]
pub extern "C" fn ddog_logger_configure_std(target: i32) -> *mut LogError {
    catch_or(error("panic"), || {
        let t = match target {
            0 => 1,
            1 => 2,
            _ => return error("unknown std target"),
        };
        TARGET.store(t, Ordering::Relaxed);
        filter();
        std::ptr::null_mut()
    })
}

/// Stops writing libdatadog's logs.
#[no_mangle]
pub extern "C" fn ddog_logger_disable_std() -> *mut LogError {
    TARGET.store(0, Ordering::Relaxed);
    std::ptr::null_mut()
}

/// The least severe level written: 0 trace, 1 debug, 2 info, 3 warn, 4 error.
#[no_mangle]
pub extern "C" fn ddog_logger_set_log_level(level: i32) -> *mut LogError {
    catch_or(error("panic"), || {
        let l = match level {
            0 => LevelFilter::TRACE,
            1 => LevelFilter::DEBUG,
            2 => LevelFilter::INFO,
            3 => LevelFilter::WARN,
            4 => LevelFilter::ERROR,
            _ => return error("unknown log level"),
        };
        match filter().map(|h| h.modify(|f| *f = l)) {
            Some(Ok(())) => std::ptr::null_mut(),
            _ => error("the logger could not be configured"),
        }
    })
}

/// The error's message, valid until `ddog_Error_drop`.
///
/// # Safety
/// `error` NULL or a logger error.
#[no_mangle]
pub unsafe extern "C" fn ddog_Error_message(error: *const LogError) -> crate::ffi::CharSlice {
    // SAFETY: the caller's contract.
    match unsafe { error.as_ref() } {
        Some(e) => crate::ffi::Slice {
            ptr: e.0.as_ptr() as *const c_char,
            len: e.0.len(),
        },
        None => crate::ffi::Slice::EMPTY,
    }
}

/// Frees a logger error.
///
/// # Safety
/// `error` NULL or a logger error, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_Error_drop(error: *mut LogError) {
    if !error.is_null() {
        // SAFETY: made by Box::into_raw in `error`, freed once (the caller's contract).
        drop(unsafe { Box::from_raw(error) });
    }
}
