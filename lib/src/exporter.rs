//! `ddog_TraceExporter`: libdatadog's `TraceExporter`, built from a config,
//! and what a send answers (`ddog_TraceExporterResponse`), and the
//! cancellation token of a send.

use crate::config::Config;
use crate::ffi::{catch, catch_or, take, try_ref, write_out, ByteSlice, Error, ExporterError};
use crate::runtime::Runtime;
use crate::span::TraceChunks;
use libdd_capabilities::{HttpClientCapability, LogWriterCapability, MaybeSend, SleepCapability};
use libdd_capabilities_impl::NativeCapabilities;
use libdd_capabilities_impl::ResponseBodyLimit;
use libdd_data_pipeline::trace_exporter::agent_response::AgentResponse;
use libdd_data_pipeline::trace_exporter::error::TraceExporterError;
use libdd_data_pipeline::trace_exporter::{
    TelemetryConfig, TelemetryInstrumentationSessions, TraceExporter,
};
use libdd_shared_runtime::{BlockingRuntime, SharedRuntime, WorkerHandle};
use libdd_telemetry::config::TelemetryEndpoint;
use libdd_telemetry::worker::{TelemetryWorkerBuilder, TelemetryWorkerHandle};
use libdd_trace_utils::span::span_pool::PooledChunks;
use libdd_trace_utils::span::TraceData;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The most bytes of an agent's answer that are read; a longer answer is
/// an error (HttpBodyFormat), so a broken or hostile agent cannot make the
/// application buffer without bound.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// libdatadog's native capabilities, with every request's answer bounded by
/// [`MAX_ANSWER_BYTES`] (`ResponseBodyLimit`).
#[derive(Clone, Debug)]
pub struct Capabilities(NativeCapabilities);

impl HttpClientCapability for Capabilities {
    fn new_client() -> Self {
        Self(NativeCapabilities::new_client())
    }

    fn new_periodic() -> Self {
        Self(NativeCapabilities::new_periodic())
    }

    fn request(
        &self,
        mut req: http::Request<bytes::Bytes>,
    ) -> impl Future<Output = Result<http::Response<bytes::Bytes>, libdd_capabilities::HttpError>>
           + MaybeSend {
        req.extensions_mut()
            .insert(ResponseBodyLimit(MAX_ANSWER_BYTES));
        self.0.request(req)
    }

    fn request_streamed(
        &self,
        mut req: http::Request<()>,
    ) -> (
        libdd_capabilities::http::BodySender,
        libdd_capabilities::http::ResponseFuture,
    ) {
        req.extensions_mut()
            .insert(ResponseBodyLimit(MAX_ANSWER_BYTES));
        self.0.request_streamed(req)
    }
}

impl SleepCapability for Capabilities {
    fn new() -> Self {
        Self(<NativeCapabilities as SleepCapability>::new())
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + MaybeSend {
        self.0.sleep(duration)
    }
}

impl LogWriterCapability for Capabilities {
    fn write_log_output(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_log_output(bytes)
    }
}

/// The exporter behind a `ddog_TraceExporter*`: libdatadog's `TraceExporter`, and,
/// with telemetry, the app's lifecycle telemetry worker.
pub struct Exporter {
    inner: TraceExporter<Capabilities, Runtime>,
    lifecycle: Option<Lifecycle>,
}

impl std::ops::Deref for Exporter {
    type Target = TraceExporter<Capabilities, Runtime>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A libdd-telemetry worker of the `Full` flavor: `app-started`, `app-heartbeat`
/// at each heartbeat interval and `app-closing` when stopped. libdatadog's
/// exporter runs its own telemetry in the `MetricsLogs` flavor only (its metrics,
/// no lifecycle: libdd-data-pipeline telemetry/mod.rs), leaving the lifecycle to
/// the tracer, which here has no telemetry client of its own.
struct Lifecycle {
    runtime: Arc<Runtime>,
    worker: WorkerHandle,
    /// The worker's mailbox: dropping it would stop the worker (`app-closing`) at once.
    _mailbox: TelemetryWorkerHandle<Capabilities>,
}

impl Lifecycle {
    /// Starts the worker on `runtime`, for the agent at `url`, with the runtime id
    /// the exporter's metrics carry.
    fn start(
        c: &Config,
        t: &crate::config::Telemetry,
        url: &str,
        runtime: Arc<Runtime>,
    ) -> Result<Self, Error> {
        let mut tb = TelemetryWorkerBuilder::new_fetch_host(
            c.service.clone(),
            c.language.clone(),
            c.lang_version.clone(),
            c.tracer_version.clone(),
        );
        tb.config
            .set_endpoint(TelemetryEndpoint {
                url: Some(url.to_owned()),
                ..Default::default()
            })
            .map_err(|e| Error::invalid(format!("telemetry url: {e}")))?;
        if t.interval_ms > 0 {
            tb.config.telemetry_heartbeat_interval = Duration::from_millis(t.interval_ms);
        }
        tb.config.debug_enabled = t.debug_enabled;
        tb.config.session_id = t.session_id.clone();
        tb.config.root_session_id = t.root_session_id.clone();
        tb.config.parent_session_id = t.parent_session_id.clone();
        tb.runtime_id = t.runtime_id.clone();
        tb.application.env = Some(c.env.clone()).filter(|v| !v.is_empty());
        tb.application.service_version = Some(c.version.clone()).filter(|v| !v.is_empty());
        let (handle, worker) = tb.build_worker::<Capabilities>(None);
        let worker = runtime
            .spawn_worker(worker, false)
            .map_err(|e| Error::invalid(format!("telemetry worker: {e}")))?;
        let _ = handle.send_start();
        Ok(Self {
            runtime,
            worker,
            _mailbox: handle,
        })
    }

    /// Stops the worker: its last flush, with `app-closing`.
    fn stop(self) {
        let _ = self.runtime.block_on(self.worker.stop());
    }
}

/// A send's answer: the agent's body (empty from the OTLP and log paths).
pub struct Response {
    pub body: Vec<u8>,
}

/// The ABI's error code for one of libdatadog's errors (the mapping of
/// libdatadog's FFI, `libdd-data-pipeline-ffi/src/error.rs`: a failed request's
/// status 400–498 is HttpClient, ≥ 500 HttpServer, else HttpUnknown).
pub fn error(e: TraceExporterError) -> Error {
    use crate::abi::ErrorCode as C;
    use libdd_data_pipeline::trace_exporter::error::{
        AgentErrorKind, BuilderErrorKind, NetworkErrorKind as N,
    };
    use std::io::ErrorKind as Io;
    let code = match &e {
        TraceExporterError::Agent(AgentErrorKind::EmptyResponse) => C::HttpEmptyBody,
        TraceExporterError::Builder(BuilderErrorKind::InvalidUri(_)) => C::InvalidUrl,
        TraceExporterError::Builder(_) => C::InvalidArgument,
        TraceExporterError::Internal(_) => C::Internal,
        TraceExporterError::Deserialization(_) | TraceExporterError::Serialization(_) => C::Serde,
        TraceExporterError::Io(io) => match io.kind() {
            Io::InvalidData => C::InvalidData,
            Io::InvalidInput => C::InvalidInput,
            Io::ConnectionReset => C::ConnectionReset,
            Io::ConnectionAborted => C::ConnectionAborted,
            Io::ConnectionRefused => C::ConnectionRefused,
            Io::TimedOut => C::TimedOut,
            Io::AddrInUse => C::AddressInUse,
            _ => C::IoError,
        },
        TraceExporterError::Network(n) => match n.kind() {
            N::Body => C::HttpBodyFormat,
            N::Canceled => C::ConnectionAborted,
            N::ConnectionClosed => C::ConnectionReset,
            N::MessageTooLarge => C::HttpBodyTooLong,
            N::Parse => C::HttpParse,
            N::TimedOut => C::TimedOut,
            N::Unknown => C::NetworkUnknown,
            N::WrongStatus => C::HttpWrongStatus,
        },
        TraceExporterError::Request(r) => match u16::from(r.status()) {
            400..=498 => C::HttpClient,
            500.. => C::HttpServer,
            _ => C::HttpUnknown,
        },
        TraceExporterError::Shutdown(_) => C::Shutdown,
        TraceExporterError::Telemetry(_) => C::Telemetry,
    };
    Error::new(code, e.to_string())
}

/// InvalidArgument naming `what` for an `https://` URL when this library was
/// built without TLS (the `https` feature; the macOS prebuilts, which cannot
/// link rustls' platform verifier without the macOS SDK).
fn check_tls(url: &str, what: &str) -> Result<(), Error> {
    if cfg!(feature = "https")
        || !url
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("https://")
    {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{what} is {url}, but this build of the library has no TLS (the macOS prebuilts do not): \
         use http:// or a unix socket, or build the library with cargo on this machine (npx @dd-ffi/trace build)"
    )))
}

/// Builds a `TraceExporter` from `c`, as libdatadog's FFI does
/// (`ddog_trace_exporter_new`): stats computed in 10 s buckets when
/// `compute_stats`; with our additions (agentless, a DogStatsD URL, the
/// client's own top-level marks, and with telemetry the lifecycle worker, on
/// the exporter's runtime: made here when none is shared).
fn build(c: &Config) -> Result<Exporter, Error> {
    for (url, what) in [
        (&c.url, "the agent URL"),
        (&c.otlp_endpoint, "the OTLP endpoint"),
    ] {
        if let Some(url) = url {
            check_tls(url, what)?;
        }
    }
    if let Some((url, _)) = &c.agentless {
        check_tls(url, "the agentless intake URL")?;
    }
    let mut b = TraceExporter::<Capabilities, Runtime>::builder();
    if let Some(url) = &c.url {
        b.set_url(url);
    }
    // The lifecycle telemetry runs on the exporter's runtime: make it here when none is shared.
    let lifecycle_runtime = match (&c.telemetry, &c.agentless, c.output_to_log) {
        (Some(_), None, None) => Some(match &c.shared_runtime {
            Some(rt) => rt.clone(),
            None => Arc::new(
                <Runtime as SharedRuntime>::new()
                    .map_err(|e| Error::invalid(format!("runtime: {e}")))?,
            ),
        }),
        _ => None,
    };
    b.set_tracer_version(&c.tracer_version)
        .set_language(&c.language)
        .set_language_version(&c.lang_version)
        .set_language_interpreter(&c.lang_interpreter)
        .set_hostname(&c.hostname)
        .set_env(&c.env)
        .set_app_version(&c.version)
        .set_service(&c.service)
        .set_process_tags(&c.process_tags)
        .set_connection_timeout(c.connection_timeout_ms);
    if let Some(l) = c.stats_cardinality_limit {
        b.set_stats_cardinality_limit(
            libdd_trace_stats::span_concentrator::CardinalityLimitConfig {
                whole_key_limit: l.whole_key_limit,
                resource_limit: l.resource_limit,
                http_endpoint_limit: l.http_endpoint_limit,
                peer_tags_limit: l.peer_tags_limit,
                additional_tags_limit: l.additional_tags_limit,
            },
        );
    }
    if c.compute_stats {
        b.enable_stats(Duration::from_secs(10));
    } else if c.client_computed_stats {
        b.set_client_computed_stats();
    }
    if c.client_computed_top_level {
        b.set_client_computed_top_level();
    }
    if let Some(t) = &c.telemetry {
        b.enable_telemetry(TelemetryConfig {
            heartbeat: t.interval_ms,
            debug_enabled: t.debug_enabled,
        });
        b.set_telemetry_instrumentation_sessions(TelemetryInstrumentationSessions {
            session_id: t.session_id.clone(),
            root_session_id: t.root_session_id.clone(),
            parent_session_id: t.parent_session_id.clone(),
        });
        if let Some(id) = &t.runtime_id {
            b.set_runtime_id(id);
        }
    }
    if let Some(token) = &c.test_session_token {
        b.set_test_session_token(token);
    }
    if c.health_metrics {
        b.enable_health_metrics();
    }
    if let Some(url) = &c.dogstatsd_url {
        b.set_dogstatsd_url(url);
    }
    if let Some(rt) = lifecycle_runtime.as_ref().or(c.shared_runtime.as_ref()) {
        b.set_shared_runtime(rt.clone());
    }
    if let Some(url) = &c.otlp_endpoint {
        b.set_otlp_endpoint(url);
        if let Some(p) = &c.otlp_protocol {
            b.set_otlp_protocol(p.parse().map_err(Error::invalid)?);
        }
        b.set_otlp_instrumentation_scope(&c.otlp_scope.0, &c.otlp_scope.1);
    }
    if let Some((url, key)) = &c.agentless {
        b.set_agentless_endpoint(url, key);
    }
    if let Some(n) = c.output_to_log {
        b.set_output_to_log(Some(n));
    }
    let inner = b.build::<Capabilities>().map_err(error)?;
    let lifecycle = match (&c.telemetry, lifecycle_runtime) {
        (Some(t), Some(rt)) => {
            let url = c.url.as_deref().unwrap_or("http://127.0.0.1:8126");
            Some(Lifecycle::start(c, t, url, rt)?)
        }
        _ => None,
    };
    Ok(Exporter { inner, lifecycle })
}

/// # Safety
/// `out` must be writable for one pointer; `config` NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_new(
    out: *mut *mut Exporter,
    config: *const Config,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { try_ref(config, "config")? };
        let exporter = build(c)?;
        // SAFETY: the caller's contract.
        unsafe { write_out(out, exporter, "exporter_new") }
    })
}

/// Shuts the exporter down (its last stats and telemetry flushes, with no
/// time limit: never on an application thread) and frees it.
///
/// # Safety
/// `exporter` is NULL or an exporter handle, freed once, with no send in flight.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_free(exporter: *mut Exporter) {
    catch_or((), || {
        // SAFETY: the caller's contract.
        if let Some(e) = unsafe { take(exporter) } {
            let Exporter { inner, lifecycle } = *e;
            if let Some(l) = lifecycle {
                l.stop();
            }
            let _ = inner.shutdown(None);
        }
    })
}

/// Writes the answer to `out` (when not NULL).
///
/// # Safety
/// `out` is NULL or writable for one pointer.
unsafe fn answer(out: *mut *mut Response, r: AgentResponse) -> Result<(), Error> {
    if out.is_null() {
        return Ok(());
    }
    let body = match r {
        AgentResponse::Changed { body } => body.into_bytes(),
        AgentResponse::Unchanged => Vec::new(),
    };
    // SAFETY: non-NULL, writable (the caller's contract).
    unsafe { write_out(out, Response { body }, "response") }
}

/// Sends msgpack v0.4 trace chunks as they are (libdatadog decodes them).
///
/// # Safety
/// `exporter` NULL or an exporter handle; `trace` valid for the call; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_send(
    exporter: *const Exporter,
    trace: ByteSlice,
    out: *mut *mut Response,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract.
        let e = unsafe { try_ref(exporter, "exporter")? };
        // SAFETY: the caller's contract.
        let data = unsafe { trace.as_slice("trace")? };
        let r = e.send(data).map_err(error)?;
        // SAFETY: the caller's contract.
        unsafe { answer(out, r) }
    })
}

/// Sends built trace chunks, consuming them, and blocks until the agent
/// answers, the retries end, or `token` is cancelled (IoError).
pub fn send_chunks<T: TraceData>(
    e: &Exporter,
    chunks: Vec<Vec<libdd_trace_utils::span::v04::Span<T>>>,
    token: Option<&CancelToken>,
    out: *mut *mut Response,
) -> Result<(), Error> {
    let r = e
        .send_trace_chunks(PooledChunks::unpooled(chunks), token.map(|t| &t.0))
        .map_err(error)?;
    // SAFETY: out is NULL or writable (the ABI of the exported send functions).
    unsafe { answer(out, r) }
}

/// # Safety
/// `exporter` NULL or an exporter handle; `chunks` NULL or a chunks handle,
/// consumed (also on failure); `out` NULL or writable; `token` NULL or a token.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_send_trace_chunks(
    exporter: *const Exporter,
    chunks: *mut TraceChunks,
    out: *mut *mut Response,
    token: *const CancelToken,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: the caller's contract: the chunks are ours from here on.
        let chunks =
            unsafe { take(chunks) }.ok_or_else(|| Error::invalid("trace chunks is NULL"))?;
        // SAFETY: the caller's contract.
        let e = unsafe { try_ref(exporter, "exporter")? };
        // SAFETY: the caller's contract.
        let token = unsafe { token.as_ref() };
        send_chunks(e, chunks.into_chunks(), token, out)
    })
}

/// The body of an answer (empty for NULL); valid until the response is freed.
///
/// # Safety
/// `response` NULL or a response handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_response_get_body(
    response: *const Response,
) -> ByteSlice {
    catch_or(ByteSlice::EMPTY, || {
        // SAFETY: the caller's contract.
        match unsafe { response.as_ref() } {
            Some(r) => ByteSlice::new(&r.body),
            None => ByteSlice::EMPTY,
        }
    })
}

/// # Safety
/// `response` NULL or a response handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_response_free(response: *mut Response) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(response) }))
}

/// A send's cancellation token (tokio-util's).
pub struct CancelToken(CancellationToken);

#[no_mangle]
pub extern "C" fn ddog_trace_exporter_cancel_token_new() -> *mut CancelToken {
    catch_or(std::ptr::null_mut(), || {
        crate::ffi::into_handle(CancelToken(CancellationToken::new()))
    })
}

/// Cancels the sends that use `token`; NULL: nothing.
///
/// # Safety
/// `token` NULL or a token handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_cancel_token_cancel(token: *const CancelToken) {
    catch_or((), || {
        // SAFETY: the caller's contract.
        if let Some(t) = unsafe { token.as_ref() } {
            t.0.cancel();
        }
    })
}

/// # Safety
/// `token` NULL or a token handle, freed once, with no send using it.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_cancel_token_drop(token: *mut CancelToken) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(token) }))
}

#[cfg(test)]
mod tests {
    use super::check_tls;

    #[test]
    fn an_https_url_needs_tls() {
        assert!(check_tls("http://127.0.0.1:8126", "the agent URL").is_ok());
        assert!(check_tls("unix:///var/run/datadog/apm.socket", "the agent URL").is_ok());
        let https = check_tls("HTTPS://agent:8126", "the agent URL");
        if cfg!(feature = "https") {
            assert!(https.is_ok());
        } else {
            let e = https.unwrap_err();
            assert_eq!(e.code, crate::abi::ErrorCode::InvalidArgument);
            assert!(e.message.starts_with(
                "the agent URL is HTTPS://agent:8126, but this build of the library has no TLS"
            ));
        }
    }
}
