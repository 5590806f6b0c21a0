//! mcp-auth-e2e
