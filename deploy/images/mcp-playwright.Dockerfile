# The `playwright` service of the compose stack (off by default, MCP_PLAYWRIGHT_ENABLED): npm
# @playwright/mcp, the version `cargo xtask install` pins, driving Debian's Chromium
# headless, without Chromium's sandbox (it needs user namespaces, which the container does
# not give it) and with its profile in memory. Playwright downloads no browser here: it is
# told where Debian's is. Listens on $PLAYWRIGHT_MCP_HOST:$PLAYWRIGHT_MCP_PORT
# (127.0.0.1:3005); its files go to /tmp/playwright.
#
# `cargo xtask images` installs the package on the host (`npm install --prefix app`) and
# copies it in; Chromium comes from Debian's archive, as the host's does.
ARG NODE_IMAGE=docker.io/library/node:22-bookworm-slim
FROM ${NODE_IMAGE}

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

COPY app/node_modules /opt/mcp-playwright/node_modules
COPY mcp-auth-healthcheck mcp-auth-if-enabled /usr/local/bin/

USER 65532:65532
WORKDIR /tmp
ENV HOME=/tmp \
    NODE_ENV=production \
    PLAYWRIGHT_MCP_HOST=127.0.0.1 \
    PLAYWRIGHT_MCP_PORT=3005 \
    MCP_AUTH_HEALTHCHECK=tcp://127.0.0.1:3005
EXPOSE 3005
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["mcp-auth-healthcheck"]
# MCP_SERVICE_ENABLED=false (compose passes MCP_PLAYWRIGHT_ENABLED, default false) exits at once.
ENTRYPOINT ["mcp-auth-if-enabled", "node", "/opt/mcp-playwright/node_modules/@playwright/mcp/cli.js", \
            "--browser", "chromium", "--executable-path", "/usr/bin/chromium", "--headless", \
            "--no-sandbox", "--isolated", "--output-dir", "/tmp/playwright"]
