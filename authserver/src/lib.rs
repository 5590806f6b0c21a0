//! mcp-auth-authserver
