//! The shim (`libddffi_batch`): the batch decoder alone, loaded next to a
//! libdatadog release build (`DD_LIBDATADOG_PATH`), which has no
//! `ddffi_batch_send`. It builds each batch's spans through that library's
//! public `ddog_tracer_*` functions, resolved from the loaded file by
//! `ddffi_batch_bind`, and sends them with its
//! `ddog_trace_exporter_send_trace_chunks`: one FFI crossing from
//! JavaScript, the per-field calls on the send thread.
//!
//! Every exported function catches panics; a caught panic is returned as
//! the library's own InvalidArgument error (only it can make errors).

use bumpalo::Bump;
use ddffi_batch::{Attribute, LinkFields, Sink, SpanFields, Token};
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

type Error = *mut c_void;
type Handle = *mut c_void;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Slice<T> {
    pub ptr: *const T,
    pub len: usize,
}

impl<T> Slice<T> {
    fn of(s: &[T]) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

fn text(s: &str) -> Slice<c_char> {
    Slice {
        ptr: s.as_ptr().cast(),
        len: s.len(),
    }
}

/// `ddog_TracerSpanFields`, `ddog_TracerSpanLink`, `ddog_TracerSpanLinkAttribute`,
/// `ddog_TracerValueToken`: as in the engine (lib/src/span.rs, value.rs), whose
/// layouts are checked against ffi/abi.ts.
#[repr(C)]
struct Fields {
    service: Slice<c_char>,
    name: Slice<c_char>,
    resource: Slice<c_char>,
    span_type: Slice<c_char>,
    trace_id_low: u64,
    trace_id_high: u64,
    span_id: u64,
    parent_id: u64,
    start: i64,
    duration: i64,
    error: i32,
}

#[repr(C)]
struct LinkAttribute {
    key: Slice<c_char>,
    value: Slice<c_char>,
}

#[repr(C)]
struct CLink {
    trace_id_low: u64,
    trace_id_high: u64,
    span_id: u64,
    attributes: Slice<LinkAttribute>,
    tracestate: Slice<c_char>,
    flags: u32,
}

#[repr(C)]
struct ValueToken {
    kind: u8,
    bool_value: u8,
    child_count: u32,
    i64_value: i64,
    u64_value: u64,
    f64_value: f64,
    bytes: Slice<u8>,
}

/// The public functions the shim calls, resolved from the loaded library.
struct Api {
    span_new: unsafe extern "C" fn(*mut Handle, *const Fields) -> Error,
    span_free: unsafe extern "C" fn(Handle),
    set_meta: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<c_char>) -> Error,
    set_metric: unsafe extern "C" fn(Handle, Slice<c_char>, f64) -> Error,
    set_meta_struct_blob: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<u8>) -> Error,
    set_meta_struct: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<ValueToken>) -> Error,
    set_links: unsafe extern "C" fn(Handle, Slice<CLink>) -> Error,
    event_new: unsafe extern "C" fn(*mut Handle, Slice<c_char>, u64) -> Error,
    event_free: unsafe extern "C" fn(Handle),
    event_set_string: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<c_char>) -> Error,
    event_set_bool: unsafe extern "C" fn(Handle, Slice<c_char>, bool) -> Error,
    event_set_int: unsafe extern "C" fn(Handle, Slice<c_char>, i64) -> Error,
    event_set_double: unsafe extern "C" fn(Handle, Slice<c_char>, f64) -> Error,
    event_set_string_array:
        unsafe extern "C" fn(Handle, Slice<c_char>, Slice<Slice<c_char>>) -> Error,
    event_set_bool_array: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<bool>) -> Error,
    event_set_int_array: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<i64>) -> Error,
    event_set_double_array: unsafe extern "C" fn(Handle, Slice<c_char>, Slice<f64>) -> Error,
    add_event: unsafe extern "C" fn(Handle, Handle) -> Error,
    chunks_new: unsafe extern "C" fn(usize, *mut Handle) -> Error,
    chunks_free: unsafe extern "C" fn(Handle),
    begin_chunk: unsafe extern "C" fn(Handle, usize) -> Error,
    push_span: unsafe extern "C" fn(Handle, Handle) -> Error,
    send_trace_chunks:
        unsafe extern "C" fn(*const c_void, Handle, *mut Handle, *const c_void) -> Error,
}

static API: OnceLock<Api> = OnceLock::new();

/// Resolves `names` from `lib`; None when one is missing (`missing` counts them).
///
/// # Safety
/// `lib` is a handle from dlopen.
unsafe fn resolve(lib: *mut c_void, missing: &mut i32) -> Option<Api> {
    let mut get = |name: &str| {
        let c = CString::new(name).unwrap_or_default();
        // SAFETY: `lib` is a dlopen handle; `c` a NUL-terminated name.
        let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
        if p.is_null() {
            *missing += 1;
        }
        p
    };
    macro_rules! api {
        ($($field:ident = $name:literal),* $(,)?) => {{
            $(let $field = get($name);)*
            if *missing > 0 {
                return None;
            }
            // SAFETY: each symbol is the libdatadog ABI function of that name and type
            // (shared/libdatadog-abi.md); none is NULL.
            Some(Api { $($field: unsafe { std::mem::transmute::<*mut c_void, _>($field) }),* })
        }};
    }
    api!(
        span_new = "ddog_tracer_span_new",
        span_free = "ddog_tracer_span_free",
        set_meta = "ddog_tracer_span_set_meta",
        set_metric = "ddog_tracer_span_set_metric",
        set_meta_struct_blob = "ddog_tracer_span_set_meta_struct_blob",
        set_meta_struct = "ddog_tracer_span_set_meta_struct",
        set_links = "ddog_tracer_span_set_links",
        event_new = "ddog_tracer_span_event_new",
        event_free = "ddog_tracer_span_event_free",
        event_set_string = "ddog_tracer_span_event_set_string",
        event_set_bool = "ddog_tracer_span_event_set_bool",
        event_set_int = "ddog_tracer_span_event_set_int",
        event_set_double = "ddog_tracer_span_event_set_double",
        event_set_string_array = "ddog_tracer_span_event_set_string_array",
        event_set_bool_array = "ddog_tracer_span_event_set_bool_array",
        event_set_int_array = "ddog_tracer_span_event_set_int_array",
        event_set_double_array = "ddog_tracer_span_event_set_double_array",
        add_event = "ddog_tracer_span_add_event",
        chunks_new = "ddog_tracer_trace_chunks_new",
        chunks_free = "ddog_tracer_trace_chunks_free",
        begin_chunk = "ddog_tracer_trace_chunks_begin_chunk",
        push_span = "ddog_tracer_trace_chunks_push_span",
        send_trace_chunks = "ddog_trace_exporter_send_trace_chunks",
    )
}

/// Resolves the public functions from the library file at `path` (already
/// loaded by the runtime, so dlopen returns the same handle); an empty path
/// is the program itself. Returns how many are missing (0: ready), -1 when
/// the file does not open.
///
/// # Safety
/// `path` is valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddffi_batch_bind(path: Slice<c_char>) -> i32 {
    catch_unwind(|| {
        if path.len > 0 && path.ptr.is_null() {
            return -1;
        }
        // SAFETY: non-NULL with a length, valid for the call (the caller's contract).
        let bytes = if path.len == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(path.ptr.cast::<u8>(), path.len) }
        };
        let Ok(file) = CString::new(bytes) else {
            return -1;
        };
        // SAFETY: a NUL-terminated path, or NULL for the program.
        let lib = unsafe {
            libc::dlopen(
                if bytes.is_empty() {
                    std::ptr::null()
                } else {
                    file.as_ptr()
                },
                libc::RTLD_NOW | libc::RTLD_LOCAL,
            )
        };
        if lib.is_null() {
            return -1;
        }
        let mut missing = 0;
        // SAFETY: a dlopen handle.
        if let Some(api) = unsafe { resolve(lib, &mut missing) } {
            let _ = API.set(api);
        }
        missing
    })
    .unwrap_or(-1)
}

/// The library's own InvalidArgument error (only it may allocate errors):
/// what `set_meta` answers for a NULL span.
fn invalid(api: &Api) -> Error {
    // SAFETY: a NULL span is InvalidArgument by the ABI, with no other effect.
    unsafe { (api.set_meta)(std::ptr::null_mut(), text(""), text("")) }
}

/// A span or event of the library, freed on drop unless handed back.
struct Owned {
    handle: Handle,
    free: unsafe extern "C" fn(Handle),
}

impl Owned {
    fn release(mut self) -> Handle {
        std::mem::replace(&mut self.handle, std::ptr::null_mut())
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: a live handle of the library, freed once.
            unsafe { (self.free)(self.handle) }
        }
    }
}

/// Builds the batch's chunks through the public functions.
struct Calls<'x> {
    api: &'x Api,
    chunks: Handle,
}

/// NULL is success; any error ends the decoding.
fn check(e: Error) -> Result<(), Error> {
    if e.is_null() {
        Ok(())
    } else {
        Err(e)
    }
}

/// A span of the library, and its links: `set_links` takes them all at
/// once, when the span is pushed.
struct Span<'a> {
    owned: Owned,
    links: Vec<Link<'a>>,
}

/// A span link and its attributes, as `set_links` takes them.
struct Link<'a> {
    fields: LinkFields<'a>,
    attributes: Vec<LinkAttribute>,
}

impl<'a> Sink<'a> for Calls<'_> {
    type Span = Span<'a>;
    type Link = Link<'a>;
    type Event = Owned;
    type Error = Error;

    fn invalid(&mut self) -> Error {
        invalid(self.api)
    }

    fn begin_chunk(&mut self, n: usize) -> Result<(), Error> {
        // SAFETY: a live chunks handle.
        check(unsafe { (self.api.begin_chunk)(self.chunks, n) })
    }

    fn span(&mut self, f: &SpanFields<'a>) -> Result<Span<'a>, Error> {
        let fields = Fields {
            service: text(f.service),
            name: text(f.name),
            resource: text(f.resource),
            span_type: text(f.span_type),
            trace_id_low: f.trace_id_low,
            trace_id_high: f.trace_id_high,
            span_id: f.span_id,
            parent_id: f.parent_id,
            start: f.start,
            duration: f.duration,
            error: f.error,
        };
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: a writable out-parameter and fields valid for the call.
        check(unsafe { (self.api.span_new)(&mut h, &fields) })?;
        Ok(Span {
            owned: Owned {
                handle: h,
                free: self.api.span_free,
            },
            links: Vec::with_capacity(f.link_count),
        })
    }

    fn meta(&mut self, s: &mut Span<'a>, k: &'a str, v: &'a str) -> Result<(), Error> {
        // SAFETY: a live span; slices valid for the call.
        check(unsafe { (self.api.set_meta)(s.owned.handle, text(k), text(v)) })
    }

    fn metric(&mut self, s: &mut Span<'a>, k: &'a str, v: f64) -> Result<(), Error> {
        // SAFETY: a live span; the slice valid for the call.
        check(unsafe { (self.api.set_metric)(s.owned.handle, text(k), v) })
    }

    fn meta_struct_blob(
        &mut self,
        s: &mut Span<'a>,
        k: &'a str,
        blob: &'a [u8],
    ) -> Result<(), Error> {
        // SAFETY: a live span; slices valid for the call.
        check(unsafe { (self.api.set_meta_struct_blob)(s.owned.handle, text(k), Slice::of(blob)) })
    }

    fn meta_struct_tokens(
        &mut self,
        s: &mut Span<'a>,
        k: &'a str,
        tokens: &[Token<'a>],
    ) -> Result<(), Error> {
        let list: Vec<ValueToken> = tokens
            .iter()
            .map(|t| {
                let mut v = ValueToken {
                    kind: 0,
                    bool_value: 0,
                    child_count: 0,
                    i64_value: 0,
                    u64_value: 0,
                    f64_value: 0.0,
                    bytes: Slice::of(&[]),
                };
                match *t {
                    Token::Nil => v.kind = ddffi_batch::VALUE_NIL as u8,
                    Token::Bool(b) => {
                        (v.kind, v.bool_value) = (ddffi_batch::VALUE_BOOL as u8, b as u8)
                    }
                    Token::I64(i) => (v.kind, v.i64_value) = (ddffi_batch::VALUE_I64 as u8, i),
                    Token::U64(u) => (v.kind, v.u64_value) = (ddffi_batch::VALUE_U64 as u8, u),
                    Token::F64(f) => (v.kind, v.f64_value) = (ddffi_batch::VALUE_F64 as u8, f),
                    Token::Str(s) => {
                        (v.kind, v.bytes) =
                            (ddffi_batch::VALUE_STRING as u8, Slice::of(s.as_bytes()))
                    }
                    Token::Bin(b) => {
                        (v.kind, v.bytes) = (ddffi_batch::VALUE_BINARY as u8, Slice::of(b))
                    }
                    Token::Array(n) => {
                        (v.kind, v.child_count) = (ddffi_batch::VALUE_ARRAY as u8, n)
                    }
                    Token::Map(n) => (v.kind, v.child_count) = (ddffi_batch::VALUE_MAP as u8, n),
                }
                v
            })
            .collect();
        // SAFETY: a live span; the tokens and their slices valid for the call.
        check(unsafe { (self.api.set_meta_struct)(s.owned.handle, text(k), Slice::of(&list)) })
    }

    fn link(&mut self, fields: &LinkFields<'a>, n: usize) -> Result<Link<'a>, Error> {
        Ok(Link {
            fields: *fields,
            attributes: Vec::with_capacity(n),
        })
    }

    fn link_attribute(&mut self, l: &mut Link<'a>, k: &'a str, v: &'a str) -> Result<(), Error> {
        l.attributes.push(LinkAttribute {
            key: text(k),
            value: text(v),
        });
        Ok(())
    }

    fn add_link(&mut self, s: &mut Span<'a>, l: Link<'a>) -> Result<(), Error> {
        s.links.push(l);
        Ok(())
    }

    fn event(&mut self, name: &'a str, time: u64, _: usize) -> Result<Owned, Error> {
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: a writable out-parameter; the slice valid for the call.
        check(unsafe { (self.api.event_new)(&mut h, text(name), time) })?;
        Ok(Owned {
            handle: h,
            free: self.api.event_free,
        })
    }

    fn event_attribute(
        &mut self,
        e: &mut Owned,
        k: &'a str,
        value: Attribute<'a>,
    ) -> Result<(), Error> {
        let (a, h, key) = (self.api, e.handle, text(k));
        // SAFETY: a live event; every slice valid (and aligned) for the call.
        check(unsafe {
            match value {
                Attribute::String(s) => (a.event_set_string)(h, key, text(s)),
                Attribute::Bool(b) => (a.event_set_bool)(h, key, b),
                Attribute::Int(i) => (a.event_set_int)(h, key, i),
                Attribute::Double(d) => (a.event_set_double)(h, key, d),
                Attribute::StringArray(v) => {
                    let list: Vec<Slice<c_char>> = v.iter().map(|s| text(s)).collect();
                    (a.event_set_string_array)(h, key, Slice::of(&list))
                }
                Attribute::BoolArray(v) => (a.event_set_bool_array)(h, key, Slice::of(&v)),
                Attribute::IntArray(v) => (a.event_set_int_array)(h, key, Slice::of(&v)),
                Attribute::DoubleArray(v) => (a.event_set_double_array)(h, key, Slice::of(&v)),
            }
        })
    }

    fn add_event(&mut self, s: &mut Span<'a>, e: Owned) -> Result<(), Error> {
        // SAFETY: a live span and event; add_event consumes the event, also when it fails.
        check(unsafe { (self.api.add_event)(s.owned.handle, e.release()) })
    }

    fn push_span(&mut self, s: Span<'a>) -> Result<(), Error> {
        if !s.links.is_empty() {
            let list: Vec<CLink> = s
                .links
                .iter()
                .map(|l| CLink {
                    trace_id_low: l.fields.trace_id_low,
                    trace_id_high: l.fields.trace_id_high,
                    span_id: l.fields.span_id,
                    attributes: Slice::of(&l.attributes),
                    tracestate: text(l.fields.tracestate),
                    flags: l.fields.flags,
                })
                .collect();
            // SAFETY: a live span; the links and their slices valid for the call.
            check(unsafe { (self.api.set_links)(s.owned.handle, Slice::of(&list)) })?;
        }
        // SAFETY: live chunks and span; push_span consumes the span, also when it fails.
        check(unsafe { (self.api.push_span)(self.chunks, s.owned.release()) })
    }
}

/// Decodes `batch` (`len` bytes), builds its trace chunks through the
/// library's public functions and sends them with
/// `ddog_trace_exporter_send_trace_chunks(exporter, chunks, out, token)`.
/// Blocks until the agent answers. Needs a successful `ddffi_batch_bind`
/// first (else NULL, with no response).
///
/// # Safety
/// `exporter` an exporter of the bound library; `batch` readable for `len`
/// bytes; `out` NULL or writable; `token` NULL or a token of that library.
#[no_mangle]
pub unsafe extern "C" fn ddffi_batch_send(
    exporter: *const c_void,
    batch: *const u8,
    len: usize,
    out: *mut Handle,
    token: *const c_void,
) -> Error {
    let Some(api) = API.get() else {
        return std::ptr::null_mut();
    };
    catch_unwind(AssertUnwindSafe(|| {
        if batch.is_null() && len > 0 {
            return invalid(api);
        }
        // SAFETY: `len` readable bytes, unchanged during the call (the caller's contract).
        let bytes = if len == 0 {
            &[][..]
        } else {
            unsafe { std::slice::from_raw_parts(batch, len) }
        };
        let mut chunks: Handle = std::ptr::null_mut();
        // SAFETY: a writable out-parameter.
        if let Err(e) = check(unsafe { (api.chunks_new)(0, &mut chunks) }) {
            return e;
        }
        let arena = Bump::new();
        let mut calls = Calls { api, chunks };
        if let Err(e) = ddffi_batch::decode(bytes, &arena, &mut calls) {
            // SAFETY: the live chunks handle, freed once.
            unsafe { (api.chunks_free)(chunks) };
            return e;
        }
        // SAFETY: the send consumes the chunks, also when it fails; the spans borrow nothing of ours.
        unsafe { (api.send_trace_chunks)(exporter, chunks, out, token) }
    }))
    .unwrap_or_else(|_| invalid(api))
}
