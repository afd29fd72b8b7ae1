//! `ddffi_batch_send`: one batch (ffi/batch.ts) decoded straight into
//! libdatadog's spans (`SpanSlice`, borrowing the batch's strings), then
//! `TraceExporter::send_trace_chunks`. No per-field ABI call, no copy of a
//! string that is valid UTF-8 in the batch.

use crate::exporter::{send_chunks, CancelToken, Exporter, Response};
use crate::ffi::{catch, try_ref, CharSlice, Error, ExporterError};
use crate::span::new_span;
use crate::value::encode;
use bumpalo::Bump;
use ddffi_batch::{Attribute, LinkFields, Sink, SpanFields, Token};
use libdd_trace_utils::span::v04::{
    AttributeAnyValue, AttributeArrayValue, SpanEventSlice, SpanLinkSlice, SpanSlice,
};
use libdd_trace_utils::span::vec_map::VecMap;
use libdd_trace_utils::span::SliceData;
use std::borrow::Cow;
use std::collections::HashMap;

/// Collects the batch's spans as libdatadog's own, borrowing the batch and `arena`.
struct Spans<'a> {
    chunks: Vec<Vec<SpanSlice<'a>>>,
    arena: &'a Bump,
}

type Value<'a> = AttributeArrayValue<SliceData<'a>>;

impl<'a> Sink<'a> for Spans<'a> {
    type Span = SpanSlice<'a>;
    type Link = SpanLinkSlice<'a>;
    type Event = SpanEventSlice<'a>;
    type Error = Error;

    fn invalid(&mut self) -> Error {
        Error::invalid("batch: corrupt or truncated")
    }

    fn begin_chunk(&mut self, span_count: usize) -> Result<(), Error> {
        self.chunks.push(Vec::with_capacity(span_count));
        Ok(())
    }

    fn span(&mut self, f: &SpanFields<'a>) -> Result<SpanSlice<'a>, Error> {
        let mut s = new_span(f, Cow::Borrowed);
        // Sized once; one more meta entry for the mark libdatadog adds to a chunk's first span.
        s.meta = VecMap::with_capacity(f.meta_count + 1);
        s.metrics = VecMap::with_capacity(f.metric_count);
        s.span_links = Vec::with_capacity(f.link_count);
        s.span_events = Vec::with_capacity(f.event_count);
        Ok(s)
    }

    fn meta(&mut self, s: &mut SpanSlice<'a>, key: &'a str, value: &'a str) -> Result<(), Error> {
        s.meta.insert(Cow::Borrowed(key), Cow::Borrowed(value));
        Ok(())
    }

    fn metric(&mut self, s: &mut SpanSlice<'a>, key: &'a str, value: f64) -> Result<(), Error> {
        s.metrics.insert(Cow::Borrowed(key), value);
        Ok(())
    }

    fn meta_struct_blob(
        &mut self,
        s: &mut SpanSlice<'a>,
        key: &'a str,
        blob: &'a [u8],
    ) -> Result<(), Error> {
        s.meta_struct.insert(Cow::Borrowed(key), blob);
        Ok(())
    }

    fn meta_struct_tokens(
        &mut self,
        s: &mut SpanSlice<'a>,
        key: &'a str,
        tokens: &[Token<'a>],
    ) -> Result<(), Error> {
        let bytes = encode(tokens)?;
        s.meta_struct
            .insert(Cow::Borrowed(key), self.arena.alloc_slice_copy(&bytes));
        Ok(())
    }

    fn link(
        &mut self,
        f: &LinkFields<'a>,
        attribute_count: usize,
    ) -> Result<SpanLinkSlice<'a>, Error> {
        Ok(SpanLinkSlice {
            trace_id: f.trace_id_low,
            trace_id_high: f.trace_id_high,
            span_id: f.span_id,
            attributes: HashMap::with_capacity(attribute_count),
            tracestate: Cow::Borrowed(f.tracestate),
            flags: f.flags,
        })
    }

    fn link_attribute(
        &mut self,
        l: &mut SpanLinkSlice<'a>,
        key: &'a str,
        value: &'a str,
    ) -> Result<(), Error> {
        l.attributes
            .insert(Cow::Borrowed(key), Cow::Borrowed(value));
        Ok(())
    }

    fn add_link(&mut self, s: &mut SpanSlice<'a>, l: SpanLinkSlice<'a>) -> Result<(), Error> {
        s.span_links.push(l);
        Ok(())
    }

    fn event(
        &mut self,
        name: &'a str,
        time_unix_nano: u64,
        attribute_count: usize,
    ) -> Result<SpanEventSlice<'a>, Error> {
        Ok(SpanEventSlice {
            time_unix_nano,
            name: Cow::Borrowed(name),
            attributes: HashMap::with_capacity(attribute_count),
        })
    }

    fn event_attribute(
        &mut self,
        e: &mut SpanEventSlice<'a>,
        key: &'a str,
        value: Attribute<'a>,
    ) -> Result<(), Error> {
        let v = match value {
            Attribute::String(s) => AttributeAnyValue::SingleValue(Value::String(Cow::Borrowed(s))),
            Attribute::Bool(b) => AttributeAnyValue::SingleValue(Value::Boolean(b)),
            Attribute::Int(i) => AttributeAnyValue::SingleValue(Value::Integer(i)),
            Attribute::Double(d) => AttributeAnyValue::SingleValue(Value::Double(d)),
            Attribute::StringArray(v) => AttributeAnyValue::Array(
                v.into_iter()
                    .map(|s| Value::String(Cow::Borrowed(s)))
                    .collect(),
            ),
            Attribute::BoolArray(v) => {
                AttributeAnyValue::Array(v.into_iter().map(Value::Boolean).collect())
            }
            Attribute::IntArray(v) => {
                AttributeAnyValue::Array(v.into_iter().map(Value::Integer).collect())
            }
            Attribute::DoubleArray(v) => {
                AttributeAnyValue::Array(v.into_iter().map(Value::Double).collect())
            }
        };
        e.attributes.insert(Cow::Borrowed(key), v);
        Ok(())
    }

    fn add_event(&mut self, s: &mut SpanSlice<'a>, e: SpanEventSlice<'a>) -> Result<(), Error> {
        s.span_events.push(e);
        Ok(())
    }

    fn push_span(&mut self, mut s: SpanSlice<'a>) -> Result<(), Error> {
        // libdatadog de-duplicates every map before it encodes a span (a
        // hash set per map), unless the map is marked as having no repeated
        // key. A batch repeats a key only when a later meta layer of the
        // Tracer overrides an earlier one, so checking here is cheaper.
        if unique_keys(s.meta.iter().as_slice()) {
            s.meta.mark_deduped();
        }
        if unique_keys(s.metrics.iter().as_slice()) {
            s.metrics.mark_deduped();
        }
        if unique_keys(s.meta_struct.iter().as_slice()) {
            s.meta_struct.mark_deduped();
        }
        // begin_chunk always comes first: the decoder reads a chunk's count before its spans.
        self.chunks
            .last_mut()
            .ok_or_else(|| Error::invalid("batch: span outside a chunk"))?
            .push(s);
        Ok(())
    }
}

/// Maps up to this size are checked for repeated keys pair by pair; larger
/// ones are left to libdatadog's de-duplication.
const UNIQUE_CHECK_MAX: usize = 64;

/// Whether no two of `entries`' keys are equal. A repeated key of a batch is
/// usually the same string of its table, so the pointers are compared first.
fn unique_keys<V>(entries: &[(Cow<'_, str>, V)]) -> bool {
    if entries.len() > UNIQUE_CHECK_MAX {
        return false;
    }
    for (j, (key, _)) in entries.iter().enumerate() {
        let k = key.as_bytes();
        for (earlier, _) in &entries[..j] {
            let e = earlier.as_bytes();
            if e.len() == k.len() && (e.as_ptr() == k.as_ptr() || e == k) {
                return false;
            }
        }
    }
    true
}

/// The engine decodes batches itself: nothing to resolve, always ready (0).
#[no_mangle]
pub extern "C" fn ddffi_batch_bind(_path: CharSlice) -> i32 {
    0
}

/// Decodes `batch` (`len` bytes, the format of ffi/batch.ts) and sends its
/// trace chunks (`TraceExporter::send_trace_chunks`), blocking until the
/// agent answers, the retries end, or `token` is cancelled. A corrupt or
/// truncated batch is InvalidArgument, and nothing is sent. The batch is
/// only read, and only during the call.
///
/// # Safety
/// `exporter` NULL or an exporter handle; `batch` readable for `len` bytes;
/// `out` NULL or writable for one pointer; `token` NULL or a token handle.
#[no_mangle]
pub unsafe extern "C" fn ddffi_batch_send(
    exporter: *const Exporter,
    batch: *const u8,
    len: usize,
    out: *mut *mut Response,
    token: *const CancelToken,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract.
        let e = unsafe { try_ref(exporter, "exporter")? };
        // SAFETY: the caller's contract: `len` readable bytes, unchanged during the call.
        let bytes = unsafe { crate::ffi::Slice { ptr: batch, len }.as_slice("batch")? };
        let arena = Bump::new();
        let mut spans = Spans {
            chunks: Vec::new(),
            arena: &arena,
        };
        ddffi_batch::decode(bytes, &arena, &mut spans)?;
        // SAFETY: the caller's contract.
        send_chunks(e, spans.chunks, unsafe { token.as_ref() }, out)
    })
}
