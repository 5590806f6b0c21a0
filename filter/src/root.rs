//! The root context of one worker VM: parses the plugin configuration, keeps the JWKS
//! fresh, and creates the HTTP contexts.
//!
//! Keys travel between worker VMs through Envoy's shared data:
//! - `<prefix>/jwks`: the raw JWKS document of the last good fetch; its CAS value is the
//!   key set's version. Each worker parses it once per version (checked on every tick).
//! - `<prefix>/fetch`: the [`FetchSchedule`]; a worker claims a fetch by CAS on it.
//!
//! A failed fetch, or a document without usable keys, never replaces the last good keys.
//!
//! In fast mode each worker's root context also keeps one invalidation stream open to
//! ext_authz (`mcp_auth.v1.Decisions/WatchInvalidations`) and feeds what it says to the
//! worker's [`crate::fast::FastPath`]; a stream that closes, never becomes ready, or falls
//! silent is reopened on a later tick.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info, warn};
use mcp_auth_proto::decisions::{Invalidation, SERVICE, WATCH_INVALIDATIONS, WatchRequest};
use mcp_auth_proto::handoff::{HANDOFF_KEY_ENV, HandoffKey};
use prost::Message as _;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MetricType, Status};
use sha2::{Digest as _, Sha256};

use crate::config::Config;
use crate::fast::StreamState;
use crate::http::FilterRequest;
use crate::jwks::{KeySet, MAX_JWKS_BYTES};
use crate::schedule::{FetchOutcome, FetchSchedule};
use crate::worker::Worker;

/// Tick while no keys are known: the first fetch starts on the first tick.
const FAST_TICK: Duration = Duration::from_millis(200);
/// Tick once keys are known: how quickly a worker sees a key set another worker fetched,
/// and how soon an early fetch for an unknown `kid` starts.
const TICK: Duration = Duration::from_secs(1);

/// Root context of the filter in one VM.
#[derive(Default)]
pub struct FilterRoot {
    worker: Option<Rc<Worker>>,
    shared: Option<SharedKeys>,
    /// CAS value of the JWKS document this worker parsed last.
    installed_version: Option<u32>,
    /// The pending JWKS fetch of this worker: call token and when it was given up.
    fetch_in_flight: Option<(u32, u64)>,
    /// Whether the tick has slowed down to [`TICK`].
    slow_tick: bool,
    /// The [`VM_MEMORY_METRIC`] gauge, once defined.
    memory_metric: Option<u32>,
    /// Fast mode: the open invalidation stream and when it was opened.
    stream: Option<(u32, u64)>,
}

/// Largest invalidation message read (ids are short; anything bigger is not ours).
const MAX_INVALIDATION_BYTES: usize = 64 * 1024;

/// Gauge of this VM's linear memory in bytes (Envoy shows it as
/// `wasmcustom.mcp_auth_filter_vm_memory_bytes`): what the filter's heap, cache and keys
/// take, read by `cargo xtask bench`.
const VM_MEMORY_METRIC: &str = "mcp_auth_filter_vm_memory_bytes";

/// Counter of the `Decide` calls fast mode made (`wasmcustom.mcp_auth_filter_decide_calls`):
/// one per token, route and worker while the invalidation stream is up.
const DECIDE_CALLS_METRIC: &str = "mcp_auth_filter_decide_calls";

/// Size of the VM's linear memory (the module's whole heap).
fn linear_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size::<0>() as u64 * 65_536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Names of the shared-data entries, specific to one JWKS source so two plugin instances
/// with different authservers in the same VM id never mix keys.
struct SharedKeys {
    document: String,
    schedule: String,
}

impl SharedKeys {
    fn for_config(config: &Config) -> Self {
        let source = Sha256::new()
            .chain_update(config.jwks.cluster.as_bytes())
            .chain_update([0])
            .chain_update(config.jwks.authority.as_bytes())
            .chain_update([0])
            .chain_update(config.jwks.path.as_bytes())
            .finalize();
        let id: String = source[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            document: format!("mcp-auth-filter/{id}/jwks"),
            schedule: format!("mcp-auth-filter/{id}/fetch"),
        }
    }
}

impl Context for FilterRoot {
    fn on_grpc_stream_message(&mut self, token_id: u32, message_size: usize) {
        if self.stream.map(|(token, _)| token) != Some(token_id) {
            return;
        }
        let Some(fast) = self.worker.as_ref().and_then(|w| w.fast.as_ref()) else {
            return;
        };
        let message = (message_size <= MAX_INVALIDATION_BYTES)
            .then(|| hostcalls::get_buffer(BufferType::GrpcReceiveBuffer, 0, message_size))
            .and_then(|read| read.ok().flatten())
            .and_then(|bytes| Invalidation::decode(bytes.as_slice()).ok());
        let now = self.now_ms();
        match message {
            Some(message) => {
                debug!("invalidation stream: {:?}", message.event);
                let was_up = matches!(fast.borrow().stream(), StreamState::Up { .. });
                fast.borrow_mut().on_message(&message, now);
                if !was_up && matches!(fast.borrow().stream(), StreamState::Up { .. }) {
                    info!("invalidation stream to ext_authz is live: caching decisions");
                }
            }
            None => {
                warn!("invalidation stream: unreadable message of {message_size} bytes; reopening");
                self.abandon_stream(now);
            }
        }
    }

    fn on_grpc_stream_close(&mut self, token_id: u32, status_code: u32) {
        if self.stream.map(|(token, _)| token) != Some(token_id) {
            return;
        }
        warn!(
            "invalidation stream to ext_authz closed (gRPC status {status_code}); cached decisions end soon, reconnecting"
        );
        // Already closed: nothing to cancel.
        self.stream = None;
        self.abandon_stream(self.now_ms());
    }

    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        debug!("JWKS: response to call {token_id}: {body_size} body bytes");
        if self.fetch_in_flight.map(|(token, _)| token) != Some(token_id) {
            return;
        }
        self.fetch_in_flight = None;
        let (Some(worker), Some(shared)) = (self.worker.clone(), self.shared.as_ref()) else {
            return;
        };
        let status = self.get_http_call_response_header_bytes(":status");
        let fetched = match status.as_deref() {
            Some(b"200") if body_size <= MAX_JWKS_BYTES => {
                let body = self
                    .get_http_call_response_body(0, body_size)
                    .unwrap_or_default();
                match KeySet::parse(&body) {
                    Ok(parsed) => {
                        for (kid, reason) in &parsed.skipped {
                            warn!("JWKS: skipped key {kid:?}: {reason}");
                        }
                        Ok(body)
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            Some(b"200") => Err(format!("JWKS of {body_size} bytes is too large")),
            Some(status) => Err(format!(
                "JWKS fetch answered HTTP {}",
                String::from_utf8_lossy(status)
            )),
            None => Err("JWKS fetch failed (connection or timeout)".to_owned()),
        };

        let outcome = match fetched {
            Ok(body) => {
                let (current, _) = self.get_shared_data(&shared.document);
                if current.as_deref() != Some(body.as_slice()) {
                    // Unconditional: two fresh documents racing are equally good.
                    if let Err(status) = self.set_shared_data(&shared.document, Some(&body), None) {
                        error!("JWKS: cannot publish the key set to shared data: {status:?}");
                    }
                }
                FetchOutcome::Success
            }
            Err(reason) => {
                let with_keys = worker.has_keys();
                warn!(
                    "{reason}; {}",
                    if with_keys {
                        "keeping the last good keys"
                    } else {
                        "no keys yet: requests get 503"
                    }
                );
                if with_keys {
                    FetchOutcome::FailedWithKeys
                } else {
                    FetchOutcome::FailedWithoutKeys
                }
            }
        };
        let now = self.now_ms();
        let (record, _) = self.get_shared_data(&shared.schedule);
        let next = FetchSchedule::decode(record.as_deref()).after(
            now,
            outcome,
            worker.config.jwks.refresh_secs.saturating_mul(1_000),
        );
        self.write_schedule(next);
        self.sync_keys();
    }
}

impl RootContext for FilterRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            error!("invalid plugin configuration: none given");
            return false;
        };
        let config = match Config::parse(&bytes) {
            Ok(config) => Rc::new(config),
            Err(err) => {
                error!("invalid plugin configuration: {err}");
                return false;
            }
        };
        // The hand-off is signed with a secret from the VM's environment, never from the
        // plugin configuration (which the admin interface prints): without it no request
        // could be handed on, so the plugin refuses to start.
        let secret = crate::host_env::var(HANDOFF_KEY_ENV).unwrap_or_default();
        let handoff_key = match HandoffKey::from_secret(HANDOFF_KEY_ENV, &secret) {
            Ok(key) => key,
            Err(err) => {
                error!(
                    "invalid plugin environment: {err} (vm_config.environment_variables.host_env_keys)"
                );
                return false;
            }
        };
        self.shared = Some(SharedKeys::for_config(&config));
        let cache_entries = config.token_cache_entries;
        let worker = Worker::new(config, cache_entries, handoff_key);
        if worker.fast.is_some() {
            worker
                .decide_calls_metric
                .set(hostcalls::define_metric(MetricType::Counter, DECIDE_CALLS_METRIC).ok());
        }
        self.worker = Some(Rc::new(worker));
        self.installed_version = None;
        // No fetch from here: Envoy also configures a VM on the main thread that never gets
        // the answer to a call made now, and that lost call would hold the fetch claim until
        // its timeout. Ticks only run in the VMs that serve.
        self.slow_tick = false;
        self.set_tick_period(FAST_TICK);
        true
    }

    fn on_tick(&mut self) {
        self.record_memory();
        self.sync_keys();
        let Some(worker) = self.worker.clone() else {
            return;
        };
        self.maybe_fetch(worker.take_key_refresh_request());
        self.keep_stream_open();
        if !self.slow_tick && worker.has_keys() {
            self.set_tick_period(TICK);
            self.slow_tick = true;
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FilterRequest::new(self.worker.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl FilterRoot {
    fn record_memory(&mut self) {
        if self.memory_metric.is_none() {
            self.memory_metric = hostcalls::define_metric(MetricType::Gauge, VM_MEMORY_METRIC).ok();
        }
        if let Some(metric) = self.memory_metric {
            let _ = hostcalls::record_metric(metric, linear_memory_bytes());
        }
    }

    fn now_ms(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Installs the shared JWKS document if its version changed since the last look.
    fn sync_keys(&mut self) {
        let (Some(worker), Some(shared)) = (self.worker.as_ref(), self.shared.as_ref()) else {
            return;
        };
        let (document, version) = self.get_shared_data(&shared.document);
        let Some(document) = document else {
            return;
        };
        if version.is_some() && version == self.installed_version {
            return;
        }
        self.installed_version = version;
        match KeySet::parse(&document) {
            Ok(parsed) => {
                let count = parsed.keys.len();
                let change = worker.install_keys(parsed.keys);
                info!(
                    "JWKS version {version:?}: {count} key(s) in use{}",
                    if change.cache_cleared {
                        "; a key was removed, token cache cleared"
                    } else {
                        ""
                    }
                );
            }
            Err(err) => error!("JWKS in shared data unusable, keeping the last keys: {err}"),
        }
    }

    /// Starts a JWKS fetch if one is due and this worker wins the claim.
    fn maybe_fetch(&mut self, early: bool) {
        let now = self.now_ms();
        match self.fetch_in_flight {
            Some((_, deadline)) if now < deadline => return,
            // Envoy always answers a call, by its timeout at the latest; never wait forever.
            Some((token, _)) => {
                warn!("JWKS: call {token} never answered; giving up on it");
                self.fetch_in_flight = None;
            }
            None => {}
        }
        let (Some(worker), Some(shared)) = (self.worker.clone(), self.shared.as_ref()) else {
            return;
        };
        let (record, cas) = self.get_shared_data(&shared.schedule);
        if !FetchSchedule::decode(record.as_deref()).is_due(now, early) {
            return;
        }
        let jwks = &worker.config.jwks;
        let claim = FetchSchedule::claimed(now, jwks.timeout_ms);
        match self.set_shared_data(&shared.schedule, Some(&claim.encode()), cas) {
            Ok(()) => {}
            Err(Status::CasMismatch) => return,
            Err(status) => {
                error!("JWKS: cannot write the fetch schedule: {status:?}");
                return;
            }
        }
        let headers = vec![
            (":method", "GET"),
            (":path", jwks.path.as_str()),
            (":authority", jwks.authority.as_str()),
            ("accept", "application/jwk-set+json, application/json"),
        ];
        match self.dispatch_http_call(
            &jwks.cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(jwks.timeout_ms),
        ) {
            Ok(token) => {
                debug!(
                    "JWKS: fetching {} from cluster {} (call {token})",
                    jwks.path, jwks.cluster
                );
                self.fetch_in_flight = Some((token, claim.next_due_ms));
            }
            Err(status) => {
                warn!(
                    "JWKS: cannot call cluster {:?}: {status:?}; retrying",
                    jwks.cluster
                );
                // Let the next tick (of any worker) try again.
                self.write_schedule(FetchSchedule {
                    last_attempt_ms: now,
                    next_due_ms: now,
                });
            }
        }
    }

    /// Fast mode: cancels the open invalidation stream, if any, and tells the worker it is
    /// lost; the next tick opens another.
    fn abandon_stream(&mut self, now: u64) {
        if let Some((token, _)) = self.stream.take() {
            let _ = hostcalls::cancel_grpc_stream(token);
        }
        if let Some(fast) = self.worker.as_ref().and_then(|w| w.fast.as_ref()) {
            fast.borrow_mut().on_stream_lost(now);
        }
    }

    /// Fast mode: opens the invalidation stream if none is open, and replaces one that never
    /// became ready or fell silent.
    fn keep_stream_open(&mut self) {
        let Some(worker) = self.worker.clone() else {
            return;
        };
        let (Some(fast), Some(decisions)) =
            (worker.fast.as_ref(), worker.config.decisions.as_ref())
        else {
            return;
        };
        let now = self.now_ms();
        if let Some((_, opened_at)) = self.stream {
            if !fast.borrow().stream_is_stuck(opened_at, now) {
                return;
            }
            warn!("invalidation stream to ext_authz is silent; reopening it");
            self.abandon_stream(now);
        }
        let token = match hostcalls::open_grpc_stream(
            &decisions.upstream,
            SERVICE,
            WATCH_INVALIDATIONS,
            Vec::new(),
        ) {
            Ok(token) => token,
            Err(status) => {
                debug!("cannot open the invalidation stream yet: {status:?}");
                return;
            }
        };
        let watcher = hostcalls::get_property(vec!["node", "id"])
            .ok()
            .flatten()
            .map(|id| String::from_utf8_lossy(&id).into_owned())
            .unwrap_or_default();
        let request = WatchRequest {
            watcher: format!("mcp-auth-filter {watcher}"),
        };
        // One request message, then half-close: the server streams from there.
        match hostcalls::send_grpc_stream_message(token, Some(&request.encode_to_vec()), true) {
            Ok(()) => self.stream = Some((token, now)),
            Err(status) => {
                warn!("cannot start the invalidation stream: {status:?}");
                let _ = hostcalls::cancel_grpc_stream(token);
            }
        }
    }

    fn write_schedule(&self, schedule: FetchSchedule) {
        if let Some(shared) = &self.shared
            && let Err(status) =
                self.set_shared_data(&shared.schedule, Some(&schedule.encode()), None)
        {
            error!("JWKS: cannot write the fetch schedule: {status:?}");
        }
    }
}
