//! Spans, span events, span links and trace chunks built field by field
//! (`ddog_tracer_*`): libdatadog's own `SpanBytes`, whose strings are
//! copied into refcounted `BytesString`s.

use crate::ffi::{
    catch, catch_or, take, try_mut, try_ref, write_out, ByteSlice, CharSlice, Error, ExporterError,
    Slice,
};
use crate::value::{encode, tokens, ValueToken};
use ddffi_batch::SpanFields;
use libdd_tinybytes::{Bytes, BytesString};
use libdd_trace_utils::span::v04::Span;
use libdd_trace_utils::span::v04::{
    AttributeAnyValue, AttributeArrayValue, SpanBytes, SpanEventBytes, SpanLinkBytes,
};
use libdd_trace_utils::span::TraceData;
use std::collections::HashMap;

/// The most a capacity argument reserves ahead: a larger one is a hint
/// that could otherwise exhaust memory before a span exists.
const MAX_RESERVE: usize = 1 << 16;

/// `ddog_TracerSpanFields`.
#[repr(C)]
pub struct TracerSpanFields {
    pub service: CharSlice,
    pub name: CharSlice,
    pub resource: CharSlice,
    pub span_type: CharSlice,
    pub trace_id_low: u64,
    pub trace_id_high: u64,
    pub span_id: u64,
    pub parent_id: u64,
    pub start: i64,
    pub duration: i64,
    pub error: i32,
}

/// `ddog_TracerSpanLinkAttribute`.
#[repr(C)]
pub struct TracerSpanLinkAttribute {
    pub key: CharSlice,
    pub value: CharSlice,
}

/// `ddog_TracerSpanLink`.
#[repr(C)]
pub struct TracerSpanLink {
    pub trace_id_low: u64,
    pub trace_id_high: u64,
    pub span_id: u64,
    pub attributes: Slice<TracerSpanLinkAttribute>,
    pub tracestate: CharSlice,
    pub flags: u32,
}

/// A libdatadog span with `f`'s fields and no tags yet, its four strings
/// made by `text` (copied for a span handle, borrowed from a batch).
pub fn new_span<'a, T: TraceData>(
    f: &SpanFields<'a>,
    text: impl Fn(&'a str) -> T::Text,
) -> Span<T> {
    Span {
        service: text(f.service),
        name: text(f.name),
        resource: text(f.resource),
        r#type: text(f.span_type),
        trace_id: (f.trace_id_high as u128) << 64 | f.trace_id_low as u128,
        span_id: f.span_id,
        parent_id: f.parent_id,
        start: f.start,
        duration: f.duration,
        error: f.error,
        ..Default::default()
    }
}

/// A copied string argument.
fn text(s: CharSlice, field: &str) -> Result<BytesString, Error> {
    // SAFETY: the ABI: a slice valid for the call.
    Ok(BytesString::from_string(
        unsafe { s.as_str(field)? }.to_owned(),
    ))
}

/// Runs `f` on a span handle: InvalidArgument for NULL.
fn on_span(
    span: *mut SpanBytes,
    f: impl FnOnce(&mut SpanBytes) -> Result<(), Error>,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: a span handle of ours, or NULL (the ABI).
        f(unsafe { try_mut(span, "span")? })
    })
}

/// # Safety
/// `out` writable for one pointer; `fields` NULL or readable, its slices valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_new(
    out: *mut *mut SpanBytes,
    fields: *const TracerSpanFields,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract.
        let f = unsafe { try_ref(fields, "span fields")? };
        // SAFETY: the ABI: slices valid for the call.
        let str = |s: CharSlice, field| unsafe { s.as_str(field) };
        let fields = SpanFields {
            service: str(f.service, "service")?,
            name: str(f.name, "name")?,
            resource: str(f.resource, "resource")?,
            span_type: str(f.span_type, "type")?,
            trace_id_low: f.trace_id_low,
            trace_id_high: f.trace_id_high,
            span_id: f.span_id,
            parent_id: f.parent_id,
            start: f.start,
            duration: f.duration,
            error: f.error,
            meta_count: 0,
            metric_count: 0,
            link_count: 0,
            event_count: 0,
        };
        let span = new_span(&fields, |s| BytesString::from_string(s.to_owned()));
        // SAFETY: the caller's contract.
        unsafe { write_out(out, span, "span_new") }
    })
}

/// # Safety
/// `span` NULL or a span handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_free(span: *mut SpanBytes) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(span) }))
}

/// # Safety
/// `span` NULL or a span handle; the slices valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_set_meta(
    span: *mut SpanBytes,
    key: CharSlice,
    value: CharSlice,
) -> *mut ExporterError {
    on_span(span, |s| {
        let (k, v) = (text(key, "meta key")?, text(value, "meta value")?);
        s.meta.insert(k, v);
        Ok(())
    })
}

/// # Safety
/// `span` NULL or a span handle; the slice valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_set_metric(
    span: *mut SpanBytes,
    key: CharSlice,
    value: f64,
) -> *mut ExporterError {
    on_span(span, |s| {
        s.metrics.insert(text(key, "metric key")?, value);
        Ok(())
    })
}

/// A meta_struct value already in MessagePack (copied, not checked).
///
/// # Safety
/// `span` NULL or a span handle; the slices valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_set_meta_struct_blob(
    span: *mut SpanBytes,
    key: CharSlice,
    value: ByteSlice,
) -> *mut ExporterError {
    on_span(span, |s| {
        let k = text(key, "meta_struct key")?;
        // SAFETY: the caller's contract.
        let v = unsafe { value.as_slice("meta_struct value")? };
        s.meta_struct.insert(k, Bytes::copy_from_slice(v));
        Ok(())
    })
}

/// A meta_struct value as tokens, encoded (see `value.rs`).
///
/// # Safety
/// `span` NULL or a span handle; the slices valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_set_meta_struct(
    span: *mut SpanBytes,
    key: CharSlice,
    list: Slice<ValueToken>,
) -> *mut ExporterError {
    on_span(span, |s| {
        let k = text(key, "meta_struct key")?;
        // SAFETY: the caller's contract.
        let bytes = encode(&unsafe { tokens(list)? })?;
        s.meta_struct.insert(k, Bytes::from(bytes));
        Ok(())
    })
}

/// Replaces the span's links, all or none.
///
/// # Safety
/// `span` NULL or a span handle; the slices (and the links' own) valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_set_links(
    span: *mut SpanBytes,
    links: Slice<TracerSpanLink>,
) -> *mut ExporterError {
    on_span(span, |s| {
        // SAFETY: the caller's contract.
        let list = unsafe { links.as_slice("span links")? };
        let mut made = Vec::with_capacity(list.len());
        for l in list {
            // SAFETY: the caller's contract.
            let attrs = unsafe { l.attributes.as_slice("span link attributes")? };
            let mut attributes = HashMap::with_capacity(attrs.len());
            for a in attrs {
                attributes.insert(
                    text(a.key, "span link attribute key")?,
                    text(a.value, "span link attribute value")?,
                );
            }
            made.push(SpanLinkBytes {
                trace_id: l.trace_id_low,
                trace_id_high: l.trace_id_high,
                span_id: l.span_id,
                attributes,
                tracestate: text(l.tracestate, "span link tracestate")?,
                flags: l.flags,
            });
        }
        s.span_links = made;
        Ok(())
    })
}

/// # Safety
/// `out` writable for one pointer; the slice valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_new(
    out: *mut *mut SpanEventBytes,
    name: CharSlice,
    time_unix_nano: u64,
) -> *mut ExporterError {
    catch(|| {
        let event = SpanEventBytes {
            time_unix_nano,
            name: text(name, "span event name")?,
            attributes: HashMap::new(),
        };
        // SAFETY: the caller's contract.
        unsafe { write_out(out, event, "span_event_new") }
    })
}

/// # Safety
/// `event` NULL or an event handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_free(event: *mut SpanEventBytes) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(event) }))
}

/// Sets one attribute of an event: InvalidArgument for a NULL event.
fn set_attribute(
    event: *mut SpanEventBytes,
    key: CharSlice,
    value: impl FnOnce() -> Result<AttributeAnyValue<libdd_trace_utils::span::BytesData>, Error>,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: an event handle of ours, or NULL (the ABI).
        let e = unsafe { try_mut(event, "span event")? };
        let k = text(key, "span event attribute key")?;
        e.attributes.insert(k, value()?);
        Ok(())
    })
}

type Value = AttributeArrayValue<libdd_trace_utils::span::BytesData>;

/// # Safety
/// `event` NULL or an event handle; the slices valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_string(
    event: *mut SpanEventBytes,
    key: CharSlice,
    value: CharSlice,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        Ok(AttributeAnyValue::SingleValue(Value::String(text(
            value,
            "span event attribute",
        )?)))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slice valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_bool(
    event: *mut SpanEventBytes,
    key: CharSlice,
    value: bool,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        Ok(AttributeAnyValue::SingleValue(Value::Boolean(value)))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slice valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_int(
    event: *mut SpanEventBytes,
    key: CharSlice,
    value: i64,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        Ok(AttributeAnyValue::SingleValue(Value::Integer(value)))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slice valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_double(
    event: *mut SpanEventBytes,
    key: CharSlice,
    value: f64,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        Ok(AttributeAnyValue::SingleValue(Value::Double(value)))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slices valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_string_array(
    event: *mut SpanEventBytes,
    key: CharSlice,
    values: Slice<CharSlice>,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        // SAFETY: the caller's contract.
        let list = unsafe { values.as_slice("span event attribute")? };
        Ok(AttributeAnyValue::Array(
            list.iter()
                .map(|s| text(*s, "span event attribute").map(Value::String))
                .collect::<Result<_, _>>()?,
        ))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slices valid for the call (bools 0 or 1).
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_bool_array(
    event: *mut SpanEventBytes,
    key: CharSlice,
    values: Slice<u8>,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        // SAFETY: the caller's contract; read as bytes, so any byte is defined (non-zero is true).
        let list = unsafe { values.as_slice("span event attribute")? };
        Ok(AttributeAnyValue::Array(
            list.iter().map(|&b| Value::Boolean(b != 0)).collect(),
        ))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slices valid for the call and aligned.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_int_array(
    event: *mut SpanEventBytes,
    key: CharSlice,
    values: Slice<i64>,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        // SAFETY: the caller's contract.
        let list = unsafe { values.as_slice("span event attribute")? };
        Ok(AttributeAnyValue::Array(
            list.iter().map(|&v| Value::Integer(v)).collect(),
        ))
    })
}

/// # Safety
/// `event` NULL or an event handle; the slices valid for the call and aligned.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_event_set_double_array(
    event: *mut SpanEventBytes,
    key: CharSlice,
    values: Slice<f64>,
) -> *mut ExporterError {
    set_attribute(event, key, || {
        // SAFETY: the caller's contract.
        let list = unsafe { values.as_slice("span event attribute")? };
        Ok(AttributeAnyValue::Array(
            list.iter().map(|&v| Value::Double(v)).collect(),
        ))
    })
}

/// Adds an event to a span, consuming the event (also on failure).
///
/// # Safety
/// `span` NULL or a span handle; `event` NULL or an event handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_span_add_event(
    span: *mut SpanBytes,
    event: *mut SpanEventBytes,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract: the event is ours from here on.
        let e = unsafe { take(event) }.ok_or_else(|| Error::invalid("span event is NULL"))?;
        // SAFETY: the caller's contract.
        let s = unsafe { try_mut(span, "span")? };
        s.span_events.push(*e);
        Ok(())
    })
}

/// Trace chunks being built: `begin_chunk` starts one, `push_span` adds to it.
#[derive(Default)]
pub struct TraceChunks {
    chunks: Vec<Vec<SpanBytes>>,
}

impl TraceChunks {
    pub fn into_chunks(self) -> Vec<Vec<SpanBytes>> {
        self.chunks
    }
}

/// # Safety
/// `out` writable for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_trace_chunks_new(
    capacity: usize,
    out: *mut *mut TraceChunks,
) -> *mut ExporterError {
    catch(|| {
        let chunks = TraceChunks {
            chunks: Vec::with_capacity(capacity.min(MAX_RESERVE)),
        };
        // SAFETY: the caller's contract.
        unsafe { write_out(out, chunks, "trace_chunks_new") }
    })
}

/// # Safety
/// `chunks` NULL or a chunks handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_trace_chunks_free(chunks: *mut TraceChunks) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(chunks) }))
}

/// # Safety
/// `chunks` NULL or a chunks handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_trace_chunks_begin_chunk(
    chunks: *mut TraceChunks,
    capacity: usize,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { try_mut(chunks, "trace chunks")? };
        c.chunks.push(Vec::with_capacity(capacity.min(MAX_RESERVE)));
        Ok(())
    })
}

/// Adds a span to the current chunk, consuming it (also on failure).
///
/// # Safety
/// `chunks` NULL or a chunks handle; `span` NULL or a span handle, not used again.
#[no_mangle]
pub unsafe extern "C" fn ddog_tracer_trace_chunks_push_span(
    chunks: *mut TraceChunks,
    span: *mut SpanBytes,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract: the span is ours from here on.
        let s = unsafe { take(span) }.ok_or_else(|| Error::invalid("span is NULL"))?;
        // SAFETY: the caller's contract.
        let c = unsafe { try_mut(chunks, "trace chunks")? };
        let chunk = c
            .chunks
            .last_mut()
            .ok_or_else(|| Error::invalid("push_span before begin_chunk"))?;
        chunk.push(*s);
        Ok(())
    })
}
