//! The boundary's helpers: the C types of the ABI, the one panic boundary
//! every exported function goes through, checked pointer-to-reference
//! helpers, and the count of live handles (`ddffi_debug_live_objects`).

use crate::abi::ErrorCode;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};

/// `ddog_Slice_T` (`ddog_CharSlice`, `ddog_ByteSlice`): `{ ptr, len }`, by value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Slice<T> {
    pub ptr: *const T,
    pub len: usize,
}

pub type CharSlice = Slice<c_char>;
pub type ByteSlice = Slice<u8>;

impl<T> Slice<T> {
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null(),
        len: 0,
    };

    pub fn new(s: &[T]) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The elements, or InvalidArgument naming `field` for a NULL pointer with
    /// a length, or a misaligned one.
    ///
    /// # Safety
    /// A non-NULL `ptr` must point to `len` readable elements that stay valid
    /// and unchanged for `'a` (the ABI: for the duration of the call).
    pub unsafe fn as_slice<'a>(&self, field: &str) -> Result<&'a [T], Error> {
        if self.len == 0 {
            return Ok(&[]);
        }
        if self.ptr.is_null() {
            return Err(Error::invalid(format!(
                "{field}: NULL pointer with length {}",
                self.len
            )));
        }
        if (self.ptr as usize) % std::mem::align_of::<T>() != 0 {
            return Err(Error::invalid(format!("{field}: misaligned array")));
        }
        if self.len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
            return Err(Error::invalid(format!(
                "{field}: length {} too large",
                self.len
            )));
        }
        // SAFETY: non-NULL, aligned, within isize::MAX bytes; readable for `'a` per the caller.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

impl CharSlice {
    /// The string, or InvalidArgument (NULL with a length) or InvalidInput
    /// (not UTF-8) naming `field`.
    ///
    /// # Safety
    /// As [`Slice::as_slice`].
    pub unsafe fn as_str<'a>(&self, field: &str) -> Result<&'a str, Error> {
        // SAFETY: the caller's contract; c_char and u8 have the same size and alignment.
        let bytes = unsafe {
            Slice::<u8> {
                ptr: self.ptr.cast(),
                len: self.len,
            }
            .as_slice(field)?
        };
        std::str::from_utf8(bytes)
            .map_err(|e| Error::new(ErrorCode::InvalidInput, format!("{field}: not UTF-8 ({e})")))
    }
}

/// An error on its way out: `ddog_TraceExporterError`'s code and message.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// The C error, owned by the caller (`ddog_trace_exporter_error_free`).
    pub fn into_raw(self) -> *mut ExporterError {
        let msg = CString::new(self.message.replace('\0', "\\0")).unwrap_or_default();
        live(1);
        Box::into_raw(Box::new(ExporterError {
            code: self.code,
            msg: msg.into_raw(),
        }))
    }
}

/// `ddog_TraceExporterError`: `{ int32 code; char *msg; }`.
#[repr(C)]
pub struct ExporterError {
    pub code: ErrorCode,
    pub msg: *mut c_char,
}

/// What a panic said, for the Panic error's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("panic in the native library: {text}")
}

/// The panic boundary of every exported function that returns an error:
/// runs `f`, and turns its error, or a panic, into a C error (NULL: success).
pub fn catch(f: impl FnOnce() -> Result<(), Error>) -> *mut ExporterError {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(e)) => e.into_raw(),
        Err(p) => Error::new(ErrorCode::Panic, panic_message(&*p)).into_raw(),
    }
}

/// The panic boundary of the exported functions with another result:
/// `otherwise` when `f` panics (there is no error to return).
pub fn catch_or<T>(otherwise: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(otherwise)
}

/// A shared reference from a handle, or InvalidArgument naming `what` for NULL.
///
/// # Safety
/// A non-NULL `p` must be a live handle of this type, not used mutably
/// elsewhere for `'a`.
pub unsafe fn try_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T, Error> {
    // SAFETY: the caller's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// A mutable reference from a handle, or InvalidArgument naming `what` for NULL.
///
/// # Safety
/// A non-NULL `p` must be a live handle of this type, not used elsewhere for `'a`.
pub unsafe fn try_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Error::invalid(format!("{what} is NULL")))
}

/// Takes back a handle made by [`into_handle`] (None for NULL).
///
/// # Safety
/// A non-NULL `p` must come from `into_handle::<T>` and not be used again.
pub unsafe fn take<T>(p: *mut T) -> Option<Box<T>> {
    if p.is_null() {
        return None;
    }
    live(-1);
    // SAFETY: made by Box::into_raw in into_handle, given back once (the caller's contract).
    Some(unsafe { Box::from_raw(p) })
}

/// A new handle: the value on the heap, counted live until [`take`].
pub fn into_handle<T>(value: T) -> *mut T {
    live(1);
    Box::into_raw(Box::new(value))
}

/// Writes a handle to a caller's out-parameter, or InvalidArgument for a NULL one
/// (the handle is then freed).
///
/// # Safety
/// A non-NULL `out` must be writable for one pointer.
pub unsafe fn write_out<T>(out: *mut *mut T, value: T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::invalid(format!("{what}: the out-parameter is NULL")));
    }
    // SAFETY: non-NULL and writable per the caller's contract.
    unsafe { out.write(into_handle(value)) };
    Ok(())
}

static LIVE: AtomicI64 = AtomicI64::new(0);

fn live(delta: i64) {
    LIVE.fetch_add(delta, Ordering::Relaxed);
}

/// How many handles this library has handed out and not been given back
/// (configs, exporters, spans, events, chunks, responses, errors, cancel
/// tokens, encoded values, shared runtimes): the tests' leak check.
#[no_mangle]
pub extern "C" fn ddffi_debug_live_objects() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Frees an error (NULL: nothing).
///
/// # Safety
/// `error` is NULL or an error of this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_error_free(error: *mut ExporterError) {
    catch_or((), || {
        // SAFETY: the caller's contract; errors are made by Error::into_raw.
        if let Some(e) = unsafe { take(error) } {
            if !e.msg.is_null() {
                // SAFETY: made by CString::into_raw in Error::into_raw.
                drop(unsafe { CString::from_raw(e.msg) });
            }
        }
    })
}
