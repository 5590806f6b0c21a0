//! The audit log of `mcp_policy`: one JSON object per MCP request the policy decided, as the
//! message of a `tracing` event with target [`AUDIT_TARGET`] at `info`.
//!
//! The binary writes these events to stdout as bare JSON lines, apart from the other logs
//! (see `main.rs`). Fields: `time` (RFC 3339, UTC), `user_id`, `login`, `client_id`,
//! `service`, `method`, `name`, `decision` (`allow`, `deny`, `insufficient_scope`,
//! `bad_request`), `rule` (label, or null for the default), `reason`, `source`
//! (`ext_authz`). Never the token, never the arguments of a call.

use crate::decision::Audit;
use crate::facts::RequestFacts;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "mcp_auth_audit";

/// Writes the audit line of one decided request at `now` (Unix seconds).
pub fn record(audit: &Audit, facts: &RequestFacts<'_>, now: u64) {
    let line = serde_json::json!({
        "time": rfc3339(now),
        "user_id": &*facts.token.subject,
        "login": &*facts.token.login,
        "client_id": &*facts.token.client_id,
        "service": &*facts.service,
        "method": audit.method,
        "name": audit.name,
        "decision": audit.decision,
        "rule": audit.rule,
        "reason": audit.reason,
        "source": "ext_authz",
    });
    tracing::info!(target: AUDIT_TARGET, "{line}");
}

/// Writes audit events as bare JSON lines (their message, nothing else) to `writer`.
pub fn layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .event_format(MessageOnly)
        .with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(AUDIT_TARGET, tracing::Level::INFO),
        )
}

/// Every event except audit events (which [`layer`] writes).
pub fn is_not_audit(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target() != AUDIT_TARGET
}

struct MessageOnly;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for MessageOnly
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        struct Message<'w, 'a> {
            writer: &'w mut tracing_subscriber::fmt::format::Writer<'a>,
            result: std::fmt::Result,
        }
        impl tracing::field::Visit for Message<'_, '_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.result = write!(self.writer, "{value:?}");
                }
            }
        }
        let mut message = Message {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut message);
        message.result?;
        writeln!(writer)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn unix_seconds_become_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_299_092), "2026-12-03T11:58:12Z");
    }
}
