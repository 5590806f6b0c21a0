//! mcp-auth-gateway
