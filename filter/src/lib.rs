//! mcp-auth-filter
