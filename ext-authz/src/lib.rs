//! mcp-auth-ext-authz
