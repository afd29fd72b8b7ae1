//! `ddog_TraceExporterConfig`: what `ddog_trace_exporter_new` builds a
//! `TraceExporter` from, set field by field. Every setter copies its strings.

use crate::ffi::{
    catch, catch_or, take, try_mut, try_ref, write_out, CharSlice, Error, ExporterError,
};
use crate::runtime::Runtime;
use std::sync::Arc;

/// The settings of one exporter, as the setters leave them.
#[derive(Default, Debug)]
pub struct Config {
    pub url: Option<String>,
    pub tracer_version: String,
    pub language: String,
    pub lang_version: String,
    pub lang_interpreter: String,
    pub hostname: String,
    pub env: String,
    pub version: String,
    pub service: String,
    pub process_tags: String,
    pub test_session_token: Option<String>,
    pub health_metrics: bool,
    pub dogstatsd_url: Option<String>,
    pub telemetry: Option<Telemetry>,
    pub compute_stats: bool,
    pub client_computed_stats: bool,
    pub client_computed_top_level: bool,
    pub connection_timeout_ms: Option<u64>,
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: Option<String>,
    pub otlp_scope: (String, String),
    pub output_to_log: Option<usize>,
    pub stats_cardinality_limit: Option<CardinalityLimitConfig>,
    pub shared_runtime: Option<Arc<Runtime>>,
    pub agentless: Option<(String, String)>,
}

/// Telemetry's settings (`ddog_TelemetryClientConfig`, copied).
#[derive(Default, Debug, Clone)]
pub struct Telemetry {
    pub interval_ms: u64,
    pub runtime_id: Option<String>,
    pub debug_enabled: bool,
    pub session_id: Option<String>,
    pub root_session_id: Option<String>,
    pub parent_session_id: Option<String>,
}

/// `ddog_TelemetryClientConfig`.
#[repr(C)]
pub struct TelemetryClientConfig {
    pub interval: u64,
    pub runtime_id: CharSlice,
    pub debug_enabled: bool,
    pub session_id: CharSlice,
    pub root_session_id: CharSlice,
    pub parent_session_id: CharSlice,
}

/// `ddog_CardinalityLimitConfig`: libdatadog's `CardinalityLimitConfig`, field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CardinalityLimitConfig {
    pub whole_key_limit: usize,
    pub resource_limit: usize,
    pub http_endpoint_limit: usize,
    pub peer_tags_limit: usize,
    pub additional_tags_limit: usize,
}

/// Runs a setter on a config: InvalidArgument for a NULL config.
fn set(
    config: *mut Config,
    f: impl FnOnce(&mut Config) -> Result<(), Error>,
) -> *mut ExporterError {
    catch(|| {
        // SAFETY: a config handle of ours, or NULL (the ABI).
        let c = unsafe { try_mut(config, "config")? };
        f(c)
    })
}

/// A string argument, copied.
fn string(s: CharSlice, field: &str) -> Result<String, Error> {
    // SAFETY: the ABI: a slice valid for the call.
    Ok(unsafe { s.as_str(field)? }.to_owned())
}

/// An optional string of the telemetry config: NULL is unset.
fn optional(s: CharSlice, field: &str) -> Result<Option<String>, Error> {
    if s.ptr.is_null() {
        return Ok(None);
    }
    string(s, field).map(Some)
}

/// # Safety
/// `out` must be writable for one pointer.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_new(out: *mut *mut Config) {
    // SAFETY: the caller's contract.
    catch_or((), || {
        drop(unsafe { write_out(out, Config::default(), "config_new") })
    })
}

/// # Safety
/// `config` is NULL or a config handle, freed once.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_free(config: *mut Config) {
    // SAFETY: the caller's contract.
    catch_or((), || drop(unsafe { take(config) }))
}

macro_rules! string_setter {
    ($name:ident, $field:literal, |$c:ident, $v:ident| $body:expr) => {
        /// Sets the config's
        #[doc = concat!("`", $field, "`")]
        /// (copied).
        ///
        /// # Safety
        /// `config` is NULL or a config handle; the slice is valid for the call.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            config: *mut Config,
            value: CharSlice,
        ) -> *mut ExporterError {
            set(config, |$c| {
                let $v = string(value, $field)?;
                $body;
                Ok(())
            })
        }
    };
}

string_setter!(ddog_trace_exporter_config_set_url, "url", |c, v| c.url =
    Some(v));
string_setter!(
    ddog_trace_exporter_config_set_tracer_version,
    "tracer_version",
    |c, v| c.tracer_version = v
);
string_setter!(
    ddog_trace_exporter_config_set_language,
    "language",
    |c, v| c.language = v
);
string_setter!(
    ddog_trace_exporter_config_set_lang_version,
    "lang_version",
    |c, v| c.lang_version = v
);
string_setter!(
    ddog_trace_exporter_config_set_lang_interpreter,
    "lang_interpreter",
    |c, v| c.lang_interpreter = v
);
string_setter!(
    ddog_trace_exporter_config_set_hostname,
    "hostname",
    |c, v| c.hostname = v
);
string_setter!(ddog_trace_exporter_config_set_env, "env", |c, v| c.env = v);
string_setter!(ddog_trace_exporter_config_set_version, "version", |c, v| {
    c.version = v
});
string_setter!(ddog_trace_exporter_config_set_service, "service", |c, v| {
    c.service = v
});
string_setter!(
    ddog_trace_exporter_config_set_process_tags,
    "process_tags",
    |c, v| c.process_tags = v
);
string_setter!(
    ddog_trace_exporter_config_set_test_session_token,
    "test_session_token",
    |c, v| c.test_session_token = Some(v)
);
string_setter!(
    ddog_trace_exporter_config_set_otlp_endpoint,
    "otlp_endpoint",
    |c, v| c.otlp_endpoint = Some(v)
);
string_setter!(
    ddffi_trace_exporter_config_set_dogstatsd_url,
    "dogstatsd_url",
    |c, v| c.dogstatsd_url = Some(v)
);

/// Sets the OTLP protocol: `http/json`, `http/protobuf` or `grpc`
/// (libdatadog's `OtlpProtocol`); any other is InvalidArgument.
///
/// # Safety
/// `config` is NULL or a config handle; the slice is valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_otlp_protocol(
    config: *mut Config,
    value: CharSlice,
) -> *mut ExporterError {
    set(config, |c| {
        let v = string(value, "otlp_protocol")?;
        v.parse::<libdd_data_pipeline::OtlpProtocol>()
            .map_err(Error::invalid)?;
        c.otlp_protocol = Some(v);
        Ok(())
    })
}

/// Sets the OTLP instrumentation scope's name and version.
///
/// # Safety
/// `config` is NULL or a config handle; the slices are valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_otlp_instrumentation_scope(
    config: *mut Config,
    name: CharSlice,
    version: CharSlice,
) -> *mut ExporterError {
    set(config, |c| {
        c.otlp_scope = (
            string(name, "otlp scope name")?,
            string(version, "otlp scope version")?,
        );
        Ok(())
    })
}

/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_enable_health_metrics(
    config: *mut Config,
    on: bool,
) -> *mut ExporterError {
    set(config, |c| {
        c.health_metrics = on;
        Ok(())
    })
}

/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_compute_stats(
    config: *mut Config,
    on: bool,
) -> *mut ExporterError {
    set(config, |c| {
        c.compute_stats = on;
        Ok(())
    })
}

/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_client_computed_stats(
    config: *mut Config,
    on: bool,
) -> *mut ExporterError {
    set(config, |c| {
        c.client_computed_stats = on;
        Ok(())
    })
}

/// The spans carry their own top-level marks (`_dd.top_level`): the stats take
/// them as they are, instead of libdatadog computing `_top_level` from each chunk,
/// which marks every span whose parent is in another chunk (a partial flush).
/// Not in libdatadog's FFI (`TraceExporterBuilder::set_client_computed_top_level`).
///
/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddffi_trace_exporter_config_set_client_computed_top_level(
    config: *mut Config,
    on: bool,
) -> *mut ExporterError {
    set(config, |c| {
        c.client_computed_top_level = on;
        Ok(())
    })
}

/// Each attempt's timeout, in milliseconds.
///
/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_connection_timeout(
    config: *mut Config,
    ms: u64,
) -> *mut ExporterError {
    set(config, |c| {
        c.connection_timeout_ms = Some(ms);
        Ok(())
    })
}

/// Writes traces as JSON lines to stdout instead of sending them; 0 is the default line size.
///
/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_output_to_log(
    config: *mut Config,
    max_line_size: usize,
) -> *mut ExporterError {
    set(config, |c| {
        c.output_to_log = Some(max_line_size);
        Ok(())
    })
}

/// Enables telemetry; NULL settings are a no-op, as in libdatadog's FFI.
///
/// # Safety
/// `config` is NULL or a config handle; `telemetry` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_enable_telemetry(
    config: *mut Config,
    telemetry: *const TelemetryClientConfig,
) -> *mut ExporterError {
    set(config, |c| {
        // SAFETY: NULL or readable (the caller's contract).
        let Some(t) = (unsafe { telemetry.as_ref() }) else {
            return Ok(());
        };
        c.telemetry = Some(Telemetry {
            interval_ms: t.interval,
            runtime_id: optional(t.runtime_id, "telemetry runtime_id")?,
            debug_enabled: t.debug_enabled,
            session_id: optional(t.session_id, "telemetry session_id")?,
            root_session_id: optional(t.root_session_id, "telemetry root_session_id")?,
            parent_session_id: optional(t.parent_session_id, "telemetry parent_session_id")?,
        });
        Ok(())
    })
}

/// The stats' cardinality limits (by value).
///
/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddog_trace_exporter_config_set_stats_cardinality_limit(
    config: *mut Config,
    limit: CardinalityLimitConfig,
) -> *mut ExporterError {
    set(config, |c| {
        c.stats_cardinality_limit = Some(limit);
        Ok(())
    })
}

/// libdatadog's default cardinality limits.
#[no_mangle]
pub extern "C" fn ddog_trace_exporter_config_default_stats_cardinality_limit(
) -> CardinalityLimitConfig {
    catch_or(CardinalityLimitConfig::default(), || {
        let d = libdd_trace_stats::span_concentrator::CardinalityLimitConfig::default();
        CardinalityLimitConfig {
            whole_key_limit: d.whole_key_limit,
            resource_limit: d.resource_limit,
            http_endpoint_limit: d.http_endpoint_limit,
            peer_tags_limit: d.peer_tags_limit,
            additional_tags_limit: d.additional_tags_limit,
        }
    })
}

/// What a config holds as cardinality limits (all 0 until set): the tests' probe.
///
/// # Safety
/// `config` is NULL or a config handle.
#[no_mangle]
pub unsafe extern "C" fn ddffi_debug_config_stats_cardinality_limit(
    config: *const Config,
) -> CardinalityLimitConfig {
    catch_or(CardinalityLimitConfig::default(), || {
        // SAFETY: the caller's contract.
        unsafe { try_ref(config, "config") }
            .ok()
            .and_then(|c| c.stats_cardinality_limit)
            .unwrap_or_default()
    })
}

/// The agentless intake instead of the agent (not in libdatadog's FFI):
/// traces go to `url` (e.g. `https://trace.agent.datadoghq.com`) with `api_key`.
///
/// # Safety
/// `config` is NULL or a config handle; the slices are valid for the call.
#[no_mangle]
pub unsafe extern "C" fn ddffi_trace_exporter_config_set_agentless(
    config: *mut Config,
    url: CharSlice,
    api_key: CharSlice,
) -> *mut ExporterError {
    set(config, |c| {
        let (url, key) = (string(url, "agentless url")?, string(api_key, "api_key")?);
        if key.is_empty() {
            return Err(Error::invalid(
                "api_key: empty (agentless needs DD_API_KEY)",
            ));
        }
        c.agentless = Some((url, key));
        Ok(())
    })
}
