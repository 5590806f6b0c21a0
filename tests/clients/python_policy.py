"""The official MCP Python SDK (2.x) against a gateway with an `mcp_policy`, headless.

argv: everything <url>             lists the tools, then calls get-env (reserved to a team);
      filesystem <url> <path>      lists the tools, then calls write_file on <path>, which
                                   needs the scope mcp:write: the SDK's first token lacks it,
                                   the gateway answers 403 insufficient_scope, the SDK
                                   re-authorizes (step-up) and the call is retried.
Prints one line per fact: `TOOLS <space-separated names>`, `CALL <tool> ok <text>` or
`CALL <tool> refused <error>`, `SCOPE <final token scope>`, `CONSENT <n> <scopes offered on
the n-th consent page>` (from the page's scope list).
"""

import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402
import python_sdk  # noqa: E402

consents = []
_request = browser.request


def recording_request(method, url, cookies, body=None):
    status, location, text = _request(method, url, cookies, body)
    if status == 200 and 'name="csrf"' in text:
        consents.append(text)
    return status, location, text


browser.request = recording_request


def text_of(result):
    return " ".join(c.text for c in result.content if getattr(c, "text", None))


async def main(kind, url, *rest):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    storage = python_sdk.MemoryStorage()
    auth = python_sdk.provider(url, python_sdk.HeadlessBrowser(), storage)
    http = httpx2.AsyncClient(auth=auth, timeout=30)
    async with Client(streamable_http_client(url, http_client=http)) as client:
        tools = await client.list_tools()
        print("TOOLS", " ".join(sorted(t.name for t in tools.tools)), flush=True)
        if kind == "everything":
            name, args = "get-env", {}
        else:
            name, args = "write_file", {"path": rest[0], "content": "written through the gateway"}
        try:
            result = await client.call_tool(name, args)
            state = "error" if getattr(result, "is_error", False) or getattr(result, "isError", False) else "ok"
            print("CALL", name, state, text_of(result).replace("\n", " ")[:200], flush=True)
        except Exception as error:  # the refusal, however the SDK surfaces it
            print("CALL", name, "refused", type(error).__name__, str(error).replace("\n", " ")[:300], flush=True)
    print("SCOPE", storage.tokens.scope if storage.tokens else "", flush=True)
    for i, page in enumerate(consents):
        offered = re.findall(r"<dt><code>([^<]+)</code></dt>", page)
        print("CONSENT", i, " ".join(offered), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
