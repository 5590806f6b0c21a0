# The ext_authz gRPC service (envoy.service.auth.v3.Authorization and mcp_auth.v1.Decisions).
# Built by `cargo xtask images` from the host's release binary; the base is a build argument
# (see authserver.Dockerfile). Stateless: nothing is written, so the root filesystem can be
# read-only with no volume at all.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

# rediss:// verifies Redis's certificate against the system trust store by default.
RUN if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && mkdir -p /etc/mcp-auth

COPY mcp-auth-ext-authz mcp-auth-healthcheck /usr/local/bin/

USER 65532:65532
ENV MCP_GATEWAY_CONFIG=/etc/mcp-auth/gateway.yaml \
    MCP_AUTH_HEALTHCHECK=tcp://127.0.0.1:9191
EXPOSE 9191
# A TCP check: the image has no gRPC client. Envoy's own health checks and the fast-mode
# stream see the gRPC health service (grpc.health.v1) that ext_authz serves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["mcp-auth-healthcheck"]
ENTRYPOINT ["mcp-auth-ext-authz"]
