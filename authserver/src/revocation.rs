//! Revocation: every revocation is written to Redis with a TTL (until nothing it covers can
//! still be valid) and published as a [`RevocationEvent`] on the channel ext_authz follows
//! (`KeySpace::revocation_channel`), in one `MULTI`.

use mcp_auth_proto::store::{RevocationEvent, RevocationTarget};

use std::time::Duration;

use crate::metrics::RevocationReason;
use crate::settings::Settings;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// [`revoke`] as a request of this server makes it: as of now, counted by `reason`.
pub(crate) async fn revoke_now(
    state: &AppState,
    target: RevocationTarget,
    reason: RevocationReason,
) -> Result<RevocationEvent, StoreError> {
    let event = revoke(&state.store, &state.settings, state.now(), target).await?;
    state.metrics.revoked(&event.target, reason);
    Ok(event)
}

/// Revokes `target` as of `now`: every token it covers issued at or before `now` (see
/// [`RevocationEvent::covers_issued_at`]). Grants, users and clients stay revoked until every
/// access and refresh token issued before now has expired; a grant's record is also deleted
/// so it can never be refreshed again.
pub async fn revoke(
    store: &Store,
    settings: &Settings,
    now: u64,
    target: RevocationTarget,
) -> Result<RevocationEvent, StoreError> {
    revoke_for(store, longest_lifetime(settings), now, target).await
}

/// How long past its issue any token can still be accepted: the longest token lifetime plus
/// the filter's clock leeway (the filter and ext_authz accept a token until `exp + leeway`).
/// A grant, user or client revocation is kept at least this long.
pub fn longest_lifetime(settings: &Settings) -> Duration {
    settings.access_token_ttl.max(settings.refresh_token_ttl) + settings.clock_leeway
}

/// Kept past the last moment a revoked token could be accepted, for clock skew between the
/// hosts that write and read revocations.
const MARGIN_SECS: u64 = 60;

/// [`revoke`] with the token lifetime given directly (the admin command has no [`Settings`]).
pub async fn revoke_for(
    store: &Store,
    lifetime: Duration,
    now: u64,
    target: RevocationTarget,
) -> Result<RevocationEvent, StoreError> {
    let event = RevocationEvent {
        target,
        revoked_at: now,
        expires_at: now + lifetime.as_secs() + MARGIN_SECS,
    };
    store.revoke(&event, now).await?;
    tracing::info!(
        kind = event.target.kind(),
        id = event.target.id(),
        "revoked"
    );
    Ok(event)
}

/// Revokes one access token (by `jti`) for as long as it could be accepted: until its `exp`
/// plus the clock leeway, and a margin. (Kept only until `exp`, the revocation vanished while
/// the filter and ext_authz still accepted the token for the leeway.)
pub async fn revoke_token(
    store: &Store,
    settings: &Settings,
    now: u64,
    jti: &str,
    exp: u64,
) -> Result<RevocationEvent, StoreError> {
    let event = RevocationEvent {
        target: RevocationTarget::Token(jti.to_owned()),
        revoked_at: now,
        expires_at: exp.max(now) + settings.clock_leeway.as_secs() + MARGIN_SECS,
    };
    store.revoke(&event, now).await?;
    tracing::info!(kind = "token", "revoked an access token");
    Ok(event)
}
