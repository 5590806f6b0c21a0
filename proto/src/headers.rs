//! Header names the components agree on.
//!
//! The filter verifies the access token and hands the verified claims on to ext_authz in
//! the `x-mcp-auth-*` headers below. It removes any client-sent copy of every header in
//! [`HANDOFF_HEADERS`] before it sets its own, so a value that reaches ext_authz was written
//! by the filter, never by a client. ext_authz removes them again (with the bearer token)
//! before the request reaches the MCP server, and sets the identity headers instead.

/// Subject (`sub`): the stable upstream user id.
pub const HANDOFF_SUBJECT: &str = "x-mcp-auth-sub";
/// The user's login name at the identity provider.
pub const HANDOFF_LOGIN: &str = "x-mcp-auth-login";
/// OAuth `client_id` the token was issued to.
pub const HANDOFF_CLIENT_ID: &str = "x-mcp-auth-client-id";
/// Grant id: every token issued from one authorization shares it.
pub const HANDOFF_GRANT_ID: &str = "x-mcp-auth-grant-id";
/// Token id (`jti`).
pub const HANDOFF_TOKEN_ID: &str = "x-mcp-auth-jti";
/// Granted scopes, space-delimited (RFC 6749 §3.3).
pub const HANDOFF_SCOPE: &str = "x-mcp-auth-scope";
/// Expiry (`exp`), seconds since the Unix epoch.
pub const HANDOFF_EXPIRES_AT: &str = "x-mcp-auth-exp";
/// Issued-at (`iat`), seconds since the Unix epoch: revocations cover tokens issued up to them.
pub const HANDOFF_ISSUED_AT: &str = "x-mcp-auth-iat";
/// The gateway service (route) the filter matched.
pub const HANDOFF_SERVICE: &str = "x-mcp-auth-service";

/// Every hand-off header; the filter strips all of them from incoming requests.
pub const HANDOFF_HEADERS: &[&str] = &[
    HANDOFF_SUBJECT,
    HANDOFF_LOGIN,
    HANDOFF_CLIENT_ID,
    HANDOFF_GRANT_ID,
    HANDOFF_TOKEN_ID,
    HANDOFF_SCOPE,
    HANDOFF_EXPIRES_AT,
    HANDOFF_ISSUED_AT,
    HANDOFF_SERVICE,
];

/// Default names of the identity headers the MCP server receives (configurable).
pub const DEFAULT_IDENTITY_USER_ID: &str = "x-mcp-user-id";
pub const DEFAULT_IDENTITY_USER_LOGIN: &str = "x-mcp-user-login";
pub const DEFAULT_IDENTITY_CLIENT_ID: &str = "x-mcp-client-id";
pub const DEFAULT_IDENTITY_SCOPES: &str = "x-mcp-scopes";

/// MCP transport headers (streamable HTTP).
pub const MCP_SESSION_ID: &str = "mcp-session-id";
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const MCP_METHOD: &str = "mcp-method";
pub const MCP_NAME: &str = "mcp-name";
