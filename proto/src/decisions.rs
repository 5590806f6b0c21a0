//! The fast path between the filter and ext_authz: `mcp_auth.v1.Decisions`
//! (`proto/mcp_auth/v1/decisions.proto`, whose messages these types encode).
//!
//! In fast mode the filter asks ext_authz for a decision only on a cache miss ([`Decide`]),
//! reuses it for the validity the answer carries, and drops cached decisions on the
//! invalidations ext_authz pushes over one long-lived stream per worker
//! ([`WATCH_INVALIDATIONS`]). The answer is the same `CheckResponse` the per-request
//! `Authorization/Check` would give, in a form the filter can apply by itself.
//!
//! [`Decide`]: DECIDE

/// Fully qualified gRPC service name.
pub const SERVICE: &str = "mcp_auth.v1.Decisions";
/// Unary: [`DecideRequest`] → [`DecideResponse`].
pub const DECIDE: &str = "Decide";
/// Server streaming: [`WatchRequest`] → a stream of [`Invalidation`].
pub const WATCH_INVALIDATIONS: &str = "WatchInvalidations";
/// How often ext_authz sends a [`Heartbeat`] on an idle stream.
pub const HEARTBEAT_INTERVAL_MS: u32 = 1_000;
/// Heartbeats a watcher may miss before it treats the stream as lost.
pub const MISSED_HEARTBEATS: u32 = 3;

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DecideRequest {
    /// The `x-mcp-auth-handoff` value the filter would set in per-request mode.
    #[prost(string, tag = "1")]
    pub handoff: String,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(string, tag = "3")]
    pub path: String,
    #[prost(string, tag = "4")]
    pub host: String,
    /// The request headers `mcp_policy` reads ([`POLICY_HEADERS`]).
    #[prost(message, repeated, tag = "5")]
    pub headers: Vec<Header>,
    /// The whole body of a POST (at most `mcp_policy.max_body_bytes`), for `mcp_policy`.
    #[prost(bytes = "vec", tag = "6")]
    pub body: Vec<u8>,
    /// A POST whose body the filter decides in a second `Decide`: decide the token on the
    /// route alone (revocation, allow-lists), not `mcp_policy`.
    #[prost(bool, tag = "7")]
    pub body_follows: bool,
}

/// The request headers the filter sends with a `Decide` (and ext_authz reads for
/// `mcp_policy`).
pub const POLICY_HEADERS: [&str; 3] = ["content-type", "mcp-method", "mcp-name"];

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DecideResponse {
    #[prost(oneof = "Verdict", tags = "1, 2")]
    pub verdict: Option<Verdict>,
    /// How long the same token on the same service gets the same verdict; 0: do not reuse.
    #[prost(uint64, tag = "3")]
    pub valid_for_ms: u64,
}

#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum Verdict {
    #[prost(message, tag = "1")]
    Allow(Allow),
    #[prost(message, tag = "2")]
    Deny(Deny),
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Header {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Let the request through, changed so.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Allow {
    /// Set, replacing any client-sent copy.
    #[prost(message, repeated, tag = "1")]
    pub set_headers: Vec<Header>,
    #[prost(string, repeated, tag = "2")]
    pub remove_headers: Vec<String>,
    /// Added to the response before the filter reads it ([`crate::listing::VISIBILITY_HEADER`]).
    #[prost(message, repeated, tag = "3")]
    pub response_headers: Vec<Header>,
}

/// Answer the request with this response.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Deny {
    #[prost(uint32, tag = "1")]
    pub status: u32,
    #[prost(message, repeated, tag = "2")]
    pub headers: Vec<Header>,
    #[prost(bytes = "vec", tag = "3")]
    pub body: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WatchRequest {
    /// Who watches, for ext_authz's log.
    #[prost(string, tag = "1")]
    pub watcher: String,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Invalidation {
    #[prost(oneof = "Event", tags = "1, 2, 3, 4")]
    pub event: Option<Event>,
}

#[derive(Clone, PartialEq, Eq, prost::Oneof)]
pub enum Event {
    /// The stream is live; decisions cached before it may have missed events.
    #[prost(message, tag = "1")]
    Ready(Ready),
    #[prost(message, tag = "2")]
    Revoked(Revoked),
    #[prost(message, tag = "3")]
    FlushAll(FlushAll),
    #[prost(message, tag = "4")]
    Heartbeat(Heartbeat),
}

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Ready {
    #[prost(uint32, tag = "1")]
    pub heartbeat_interval_ms: u32,
}

/// What a [`Revoked`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum TargetKind {
    Unspecified = 0,
    Token = 1,
    Grant = 2,
    User = 3,
    Client = 4,
}

/// Tokens of `id` (as a `kind`) issued at or before `revoked_at` are revoked; a token-id
/// revocation covers the token whatever its `iat` (as [`crate::store::RevocationEvent`]).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Revoked {
    #[prost(enumeration = "TargetKind", tag = "1")]
    pub kind: i32,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(uint64, tag = "3")]
    pub revoked_at: u64,
}

/// Every cached decision is void.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FlushAll {
    #[prost(string, tag = "1")]
    pub reason: String,
}

#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Heartbeat {}

impl Invalidation {
    pub fn ready() -> Self {
        Self::of(Event::Ready(Ready {
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
        }))
    }

    pub fn heartbeat() -> Self {
        Self::of(Event::Heartbeat(Heartbeat {}))
    }

    pub fn flush_all(reason: &str) -> Self {
        Self::of(Event::FlushAll(FlushAll {
            reason: reason.to_owned(),
        }))
    }

    pub fn revoked(kind: TargetKind, id: &str, revoked_at: u64) -> Self {
        Self::of(Event::Revoked(Revoked {
            kind: kind as i32,
            id: id.to_owned(),
            revoked_at,
        }))
    }

    fn of(event: Event) -> Self {
        Self { event: Some(event) }
    }
}

/// The subset of `envoy.config.core.v3.GrpcService` the filter hands Envoy to name the
/// cluster of a gRPC call or stream (a bare cluster name is ambiguous to the host: Envoy first
/// tries to parse it as this message).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EnvoyGrpcService {
    #[prost(message, optional, tag = "1")]
    pub envoy_grpc: Option<EnvoyGrpc>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct EnvoyGrpc {
    #[prost(string, tag = "1")]
    pub cluster_name: String,
    #[prost(string, tag = "2")]
    pub authority: String,
}

impl EnvoyGrpcService {
    /// The encoded `GrpcService` of `cluster`.
    pub fn encode_for_cluster(cluster: &str) -> Vec<u8> {
        Self::encode(cluster, "")
    }

    /// The encoded `GrpcService` of `cluster`, its calls sent with `:authority` `authority`
    /// (empty: Envoy's default, the cluster name, which is no valid authority where the name
    /// is Istio's `outbound|PORT||HOST`).
    pub fn encode(cluster: &str, authority: &str) -> Vec<u8> {
        prost::Message::encode_to_vec(&Self {
            envoy_grpc: Some(EnvoyGrpc {
                cluster_name: cluster.to_owned(),
                authority: authority.to_owned(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn invalidations_round_trip() {
        for message in [
            Invalidation::ready(),
            Invalidation::heartbeat(),
            Invalidation::flush_all("config reloaded"),
            Invalidation::revoked(TargetKind::Grant, "g-1", 42),
        ] {
            let bytes = message.encode_to_vec();
            assert_eq!(Invalidation::decode(bytes.as_slice()).unwrap(), message);
        }
    }

    #[test]
    fn a_decide_response_round_trips() {
        let response = DecideResponse {
            verdict: Some(Verdict::Deny(Deny {
                status: 401,
                headers: vec![Header {
                    name: "www-authenticate".into(),
                    value: "Bearer error=\"invalid_token\"".into(),
                }],
                body: b"{}".to_vec(),
            })),
            valid_for_ms: 5_000,
        };
        let bytes = response.encode_to_vec();
        assert_eq!(DecideResponse::decode(bytes.as_slice()).unwrap(), response);
    }

    #[test]
    fn the_grpc_service_is_envoys_wire_format() {
        // envoy.config.core.v3.GrpcService{envoy_grpc{cluster_name: "x"}}: field 1 (LEN) of
        // field 1 (LEN) "x", as protoc encodes it.
        assert_eq!(
            EnvoyGrpcService::encode_for_cluster("x"),
            [0x0a, 0x03, 0x0a, 0x01, b'x']
        );
    }

    #[test]
    fn the_proto_file_declares_these_names() {
        let file = include_str!("../proto/mcp_auth/v1/decisions.proto");
        assert!(file.contains("package mcp_auth.v1;"));
        assert!(file.contains("service Decisions"));
        for method in [DECIDE, WATCH_INVALIDATIONS] {
            assert!(file.contains(&format!("rpc {method}(")), "{method}");
        }
    }
}
