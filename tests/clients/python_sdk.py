"""The official MCP Python SDK's OAuth client against the gateway, driven headlessly.

argv: [--refresh] <MCP server URL>...  Works with the SDK's 2.x line (`mcp.Client`) and its 1.x line
(`ClientSession` over `streamablehttp_client`). For each server: the SDK discovers the
authorization server from the 401, registers, and sends the user to the authorization URL,
which `browser.py`'s logic follows (consent form with its CSRF token, the fake GitHub, our
callback) up to the client's redirect URI; the SDK exchanges the code, then lists the tools
and calls `echo`. Prints `<url> <number of tools> <echo text>` per server. With `--refresh`
it then waits until the (short-lived) access token has expired, calls `echo` again, which
makes the SDK refresh, and prints `REFRESH <old refresh token> <new refresh token> <client id>
<echo text>`.
"""

import asyncio
import importlib.metadata
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402

from mcp.client.auth import OAuthClientProvider  # noqa: E402
from mcp.shared.auth import OAuthClientMetadata  # noqa: E402

REDIRECT = "http://127.0.0.1:33418/callback"
V2 = int(importlib.metadata.version("mcp").split(".")[0]) >= 2


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class HeadlessBrowser:
    """Follows the authorization URL until it redirects to REDIRECT; keeps the code."""

    def __init__(self):
        self.query = None

    async def authorize(self, url):
        self.query = await asyncio.to_thread(self.follow, url)

    @staticmethod
    def follow(url):
        query = browser.follow(url, stop_at=REDIRECT)
        if "error" in query:
            raise RuntimeError(f"authorization failed: {query}")
        return query

    async def callback(self):
        if V2:
            from mcp.client.auth import AuthorizationCodeResult

            return AuthorizationCodeResult(
                code=self.query["code"], state=self.query.get("state"), iss=self.query.get("iss")
            )
        return self.query["code"], self.query.get("state")


def provider(url, headless, storage):
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name=f"mcp python sdk {importlib.metadata.version('mcp')}",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=headless.authorize,
        callback_handler=headless.callback,
    )


def echo_text(result):
    return " ".join(c.text for c in result.content if getattr(c, "text", None))


async def refresh(call, storage, expires_in):
    """Waits out the access token, calls again (the SDK refreshes first), reports rotation."""
    old = storage.tokens.refresh_token
    await asyncio.sleep(expires_in + 1)
    result = await call()
    client_id = storage.client_info.client_id
    print("REFRESH", old, storage.tokens.refresh_token, client_id, echo_text(result), flush=True)


async def run_v2(url, refresh_after):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    storage = MemoryStorage()
    http = httpx2.AsyncClient(auth=provider(url, HeadlessBrowser(), storage), timeout=30)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        tools = await client.list_tools()

        async def call():
            return await client.call_tool("echo", {"message": "hello from the python sdk"})

        result = await call()
        print(url, len(tools.tools), echo_text(result), flush=True)
        if refresh_after:
            await refresh(call, storage, storage.tokens.expires_in or 1)


async def run_v1(url, refresh_after):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    storage = MemoryStorage()
    auth = provider(url, HeadlessBrowser(), storage)
    async with streamablehttp_client(url, auth=auth) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()

            async def call():
                return await session.call_tool("echo", {"message": "hello from the python sdk"})

            result = await call()
            print(url, len(tools.tools), echo_text(result), flush=True)
            if refresh_after:
                await refresh(call, storage, storage.tokens.expires_in or 1)


async def main(args):
    refresh_after = "--refresh" in args
    for url in [a for a in args if a != "--refresh"]:
        await (run_v2(url, refresh_after) if V2 else run_v1(url, refresh_after))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
