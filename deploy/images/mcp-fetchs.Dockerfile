# The `fetchs` service of the compose stack: PyPI mcp-fetch-streamablehttp-server (the seed's
# fetch server with native streamable HTTP) on Debian's Python, at the versions
# `cargo xtask install` pins for `cargo xtask up`. It knows nothing about OAuth: Envoy in
# front of it does. Listens on $HOST:$PORT (127.0.0.1:3004) and speaks the one MCP version
# $MCP_PROTOCOL_VERSION.
#
# `cargo xtask images` downloads the wheels on the host (`pip download`, through the host's pip
# configuration and trust store) into `wheels/` with a pinned `requirements.txt`; the build
# installs them with `--no-index`: no package is fetched inside the build but Debian's.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,source=wheels,target=/tmp/wheels \
    python3 -m venv /opt/mcp \
 && /opt/mcp/bin/pip install --no-cache-dir --no-index --disable-pip-version-check \
      --find-links /tmp/wheels -r /tmp/wheels/requirements.txt

COPY mcp-auth-healthcheck mcp-auth-if-enabled /usr/local/bin/

USER 65532:65532
# It reads a `.env` in its working directory: there is none in /.
WORKDIR /
ENV HOST=127.0.0.1 \
    PORT=3004 \
    MCP_SERVER_NAME=fetchs \
    MCP_SERVER_VERSION=0.2.0 \
    MCP_PROTOCOL_VERSION=2025-06-18 \
    PYTHONDONTWRITEBYTECODE=1 \
    MCP_AUTH_HEALTHCHECK=tcp://127.0.0.1:3004
EXPOSE 3004
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["mcp-auth-healthcheck"]
# MCP_SERVICE_ENABLED=false (compose passes MCP_FETCHS_ENABLED) exits at once.
ENTRYPOINT ["mcp-auth-if-enabled", "/opt/mcp/bin/python", "-m", "mcp_fetch_streamablehttp_server"]
