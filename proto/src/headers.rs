//! Header names the components agree on. The filter → ext_authz hand-off header lives in
//! [`crate::handoff`].

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
