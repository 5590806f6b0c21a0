# The demo MCP server of the compose stack: npm @modelcontextprotocol/server-everything in
# streamable HTTP mode, the version `cargo xtask install` pins for `cargo xtask up`. It knows
# nothing about OAuth: Envoy in front of it does. Listens on $PORT (default 3001).
#
# `cargo xtask images` installs the package on the host (`npm install --prefix app`, through
# the host's npm configuration and trust store) and copies it in: nothing is fetched inside
# the build. It needs Node >= 20 (it uses the global `crypto`), so not Debian 12's Node 18.
ARG NODE_IMAGE=docker.io/library/node:22-bookworm-slim
FROM ${NODE_IMAGE}

COPY app/node_modules /opt/mcp-everything/node_modules
COPY exit-on-sigterm.cjs /opt/mcp-everything/
COPY mcp-auth-healthcheck mcp-auth-if-enabled /usr/local/bin/

USER 65532:65532
ENV PORT=3001 \
    NODE_ENV=production \
    MCP_AUTH_HEALTHCHECK=tcp://127.0.0.1:3001
EXPOSE 3001
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["mcp-auth-healthcheck"]
# MCP_SERVICE_ENABLED=false (compose passes MCP_EVERYTHING_ENABLED) exits at once.
ENTRYPOINT ["mcp-auth-if-enabled", "node", "--require", "/opt/mcp-everything/exit-on-sigterm.cjs", \
            "/opt/mcp-everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js"]
CMD ["streamableHttp"]
