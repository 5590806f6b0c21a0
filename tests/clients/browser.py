#!/usr/bin/env python3
"""Plays the user's browser for OAuth clients under test (set BROWSER to this script).

argv: the authorization URL (last argument). Follows redirects by hand, keeping each
origin's cookies (the authserver's session cookie is Secure, so a library cookie jar would
drop it on loopback http), approves our consent page by submitting its form with its CSRF
token, picks the identity provider `MCP_AUTH_E2E_PROVIDER` on our choice page, signs in at
an OpenID provider's login form (npm oidc-provider's) as `MCP_AUTH_E2E_OIDC_LOGIN`, lets the
fake GitHub auto-approve, and finally loads the client's own loopback callback, which
delivers the code to the client. Standard library only. Exits 0 once the client's callback
answered.
"""

import html
import http.client
import os
import re
import sys
import urllib.parse


class Cookies:
    """Cookies by origin (scheme, host and port): enough for loopback test servers."""

    def __init__(self):
        self.jar = {}

    def header(self, url):
        cookies = self.jar.get(origin(url), {})
        return "; ".join(f"{k}={v}" for k, v in cookies.items()) or None

    def keep(self, url, set_cookie):
        name, _, value = set_cookie.split(";", 1)[0].partition("=")
        self.jar.setdefault(origin(url), {})[name.strip()] = value.strip()


def origin(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def request(method, url, cookies, body=None):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        # The default context: the system's CAs, or SSL_CERT_FILE's.
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=30)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {}
    cookie = cookies.header(url)
    if cookie:
        headers["cookie"] = cookie
    if body is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            cookies.keep(url, value)
    return response.status, response.getheader("location"), text


def form_action(text, url):
    action = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', text, re.I)
    if not action:
        action = re.search(r'<form[^>]*action="([^"]+)"[^>]*method="post"', text, re.I)
    return urllib.parse.urljoin(url, html.unescape(action.group(1)))


def next_form(text, url):
    """The form this page asks the user to submit, as (url, body); None for no form."""
    if 'name="csrf"' in text:
        fields = {k: html.unescape(v) for k, v in re.findall(r'name="(request|csrf)" value="([^"]+)"', text)}
        if 'name="provider"' in text:
            fields["provider"] = os.environ.get("MCP_AUTH_E2E_PROVIDER", "")
        else:
            fields["decision"] = "approve"
        return form_action(text, url), urllib.parse.urlencode(fields)
    if 'name="login"' in text and 'name="password"' in text:
        login = os.environ.get("MCP_AUTH_E2E_OIDC_LOGIN", "")
        fields = {"prompt": "login", "login": login, "password": "any"}
        return form_action(text, url), urllib.parse.urlencode(fields)
    return None


def follow(url, stop_at=None):
    """Walks the sign-in from `url`; with `stop_at`, returns the query of the first redirect
    there (without loading it), else returns once a page answers 2xx without a form."""
    cookies = Cookies()
    method, body = "GET", None
    for _ in range(20):
        status, location, text = request(method, url, cookies, body)
        method, body = "GET", None
        if status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            if stop_at and url.startswith(stop_at):
                return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
            continue
        form = next_form(text, url) if status == 200 else None
        if form:
            url, body = form
            method = "POST"
            continue
        if 200 <= status < 300 and not stop_at:
            return {}
        raise RuntimeError(f"browser: {status} at {url}: {text[:300]}")
    raise RuntimeError("browser: too many redirects")


def main(url):
    try:
        follow(url)
        return 0
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[-1]))
