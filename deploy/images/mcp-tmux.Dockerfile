# The `tmux` service of the compose stack: PyPI mcp-tmux-server (a stdio server) on Debian's
# tmux and Python, served as streamable HTTP by PyPI mcp-streamablehttp-proxy as
# `cargo xtask up` serves it (gateway/src/wrap.rs), at the versions `cargo xtask install`
# pins. Listens on 127.0.0.1:$MCP_PORT (3106).
#
# Its tools run shell commands inside this container (as uid 65532, no capabilities, a
# read-only root: only /tmp is writable). Its tmux server and sessions live in /tmp.
#
# `cargo xtask images` downloads the wheels on the host (`pip download`) into `wheels/` with a
# pinned `requirements.txt`; the build installs them with `--no-index`.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim
FROM ${BASE_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv tmux \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,source=wheels,target=/tmp/wheels \
    python3 -m venv /opt/mcp \
 && /opt/mcp/bin/pip install --no-cache-dir --no-index --disable-pip-version-check \
      --find-links /tmp/wheels -r /tmp/wheels/requirements.txt

COPY mcp-auth-healthcheck mcp-auth-if-enabled /usr/local/bin/

USER 65532:65532
WORKDIR /tmp
ENV MCP_PORT=3106 \
    TMUX_TMPDIR=/tmp \
    HOME=/tmp \
    SHELL=/bin/bash \
    PYTHONDONTWRITEBYTECODE=1 \
    MCP_AUTH_HEALTHCHECK=tcp://127.0.0.1:3106
EXPOSE 3106
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["mcp-auth-healthcheck"]
# MCP_SERVICE_ENABLED=false (compose passes MCP_TMUX_ENABLED) exits at once.
ENTRYPOINT ["mcp-auth-if-enabled", "/opt/mcp/bin/mcp-streamablehttp-proxy", "--host", "127.0.0.1", \
            "--log-level", "warning", "--", "/opt/mcp/bin/mcp-tmux"]
