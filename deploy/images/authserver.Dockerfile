# The OAuth 2.1 authorization server. Built by `cargo xtask images` from the host's release
# binary (no compiler in the image). The base is a build argument so the same file builds
# where no registry is reachable (`cargo xtask images` then makes a Debian base with
# mmdebstrap); the binary links glibc, so the base must be Debian 12 or newer.
#
# Runs as an unprivileged user with a read-only root filesystem: the only writable path is
# the signing-key directory, a volume at /var/lib/mcp-auth (`authserver.keys_dir:
# /var/lib/mcp-auth/keys`), unless the key comes from MCP_AUTH_SIGNING_KEY(_FILE).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

# The GitHub API and Client ID Metadata Documents are https: the system trust store.
RUN if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && mkdir -p /etc/mcp-auth /var/lib/mcp-auth \
 && chown 65532:65532 /var/lib/mcp-auth && chmod 0700 /var/lib/mcp-auth

COPY mcp-auth-authserver mcp-auth-healthcheck /usr/local/bin/

USER 65532:65532
WORKDIR /var/lib/mcp-auth
VOLUME ["/var/lib/mcp-auth"]
ENV MCP_GATEWAY_CONFIG=/etc/mcp-auth/gateway.yaml \
    MCP_AUTH_HEALTHCHECK=http://127.0.0.1:8081/healthz
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["mcp-auth-healthcheck"]
ENTRYPOINT ["mcp-auth-authserver"]
