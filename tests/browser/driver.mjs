// Drives one headless Chromium for the real-browser tests (tests/src/chromium.rs).
//
// One command per stdin line, one JSON answer per stdout line, in order:
//   {"op":"goto","url":U}                    navigate (redirects followed as a browser does)
//   {"op":"click","selector":S,"navigates":B} click; wait for the navigation it starts (B, default true)
//   {"op":"fill","selector":S,"value":V}      type into a form field
//   {"op":"eval","expression":E}             evaluate E in the page; its JSON value
//   {"op":"screenshot","name":N}             N-desktop.png and N-phone.png (390x844) in the artifacts dir
//   {"op":"serve","prefix":P,"html":H}       answer every request under P with the page H (an attacker's site)
//   {"op":"viewport","phone":B}              a 390x844 phone viewport (B) or the desktop one
//   {"op":"wait_url","contains":C}           wait until the page's URL contains C
//   {"op":"wait_selector","selector":S}      wait until S is visible
//   {"op":"state"}                           the page as it is now
// Every answer is {"ok":true,"state":{...},"value":...} or {"ok":false,"error":"..."}. The state
// holds the main document's last response (status, headers), the headers the browser sent
// with every form POST it made (what the server saw, not what a test client would send), and
// every document URL requested, redirect hops included.
//
// Environment: MCP_AUTH_CHROMIUM (the browser), MCP_AUTH_NPM_PREFIX (where playwright-core is),
// MCP_AUTH_BROWSER_ARTIFACTS (where screenshots go).

import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const prefix = process.env.MCP_AUTH_NPM_PREFIX;
const require = createRequire(join(prefix, "node_modules", "noop.js"));
const { chromium } = require("playwright-core");

const artifacts = process.env.MCP_AUTH_BROWSER_ARTIFACTS;
mkdirSync(artifacts, { recursive: true });

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const TIMEOUT_MS = 20000;

const browser = await chromium.launch({
  executablePath: process.env.MCP_AUTH_CHROMIUM,
  headless: true,
  // This machine has no network: keep Chromium from calling home (NOTES.md).
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: DESKTOP });
context.setDefaultTimeout(TIMEOUT_MS);
// Nothing leaves loopback (web fonts, say, would hold a page's load event on this offline
// machine); pages of other sites are served by "serve".
await context.route(
  (url) => !["127.0.0.1", "localhost", "[::1]"].includes(url.hostname),
  (route) => route.abort("blockedbyclient"),
);
const page = await context.newPage();

let lastDocument = null;
// Form posts as they went on the wire, from the DevTools protocol: Playwright's own request
// headers leave out what Chromium's network stack adds (Sec-Fetch-*) to a redirected request.
const posts = new Map();
const wireHeaders = new Map();
const cdp = await context.newCDPSession(page);
await cdp.send("Network.enable");
// Every document URL the browser requested, each hop of a redirect chain included.
const navigations = [];
cdp.on("Network.requestWillBeSent", (event) => {
  if (event.type === "Document") navigations.push(event.request.url);
  if (event.request.method === "POST" && event.type === "Document") {
    posts.set(event.requestId, event.request.url);
  }
});
cdp.on("Network.requestWillBeSentExtraInfo", (event) => {
  // One per hop of a redirect chain; the first is the POST itself.
  if (!wireHeaders.has(event.requestId)) {
    const headers = {};
    for (const [name, value] of Object.entries(event.headers)) headers[name.toLowerCase()] = value;
    wireHeaders.set(event.requestId, headers);
  }
});
function formPosts() {
  return [...posts].map(([id, url]) => ({ url, headers: wireHeaders.get(id) || {} }));
}
page.on("response", async (response) => {
  const request = response.request();
  if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
  lastDocument = { status: response.status(), url: response.url(), headers: await response.allHeaders() };
});

async function state() {
  let title = "";
  let text = "";
  try {
    title = await page.title();
    text = await page.evaluate(() => (document.body ? document.body.innerText : ""));
  } catch (_) {
    // A page in the middle of navigating has no document to read.
  }
  return {
    url: page.url(),
    status: lastDocument ? lastDocument.status : 0,
    headers: lastDocument ? lastDocument.headers : {},
    title,
    text,
    form_posts: formPosts(),
    navigations,
  };
}

async function run(command) {
  switch (command.op) {
    case "goto":
      await page.goto(command.url, { waitUntil: "load" });
      return null;
    case "click":
      if (command.navigates === false) {
        await page.click(command.selector);
      } else {
        await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(command.selector)]);
      }
      return null;
    case "fill":
      await page.fill(command.selector, command.value);
      return null;
    case "eval":
      return await page.evaluate(command.expression);
    case "screenshot":
      await page.screenshot({ path: join(artifacts, `${command.name}-desktop.png`), fullPage: true });
      await page.setViewportSize(PHONE);
      await page.screenshot({ path: join(artifacts, `${command.name}-phone.png`), fullPage: true });
      await page.setViewportSize(DESKTOP);
      return null;
    case "serve":
      await page.route(`${command.prefix}**`, (route) =>
        route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: command.html }),
      );
      return null;
    case "viewport":
      await page.setViewportSize(command.phone ? PHONE : DESKTOP);
      return null;
    case "wait_url":
      await page.waitForURL((url) => url.href.includes(command.contains));
      return null;
    case "wait_selector":
      await page.locator(command.selector).first().waitFor({ state: "visible" });
      return null;
    case "state":
      return null;
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer;
  try {
    const value = await run(JSON.parse(line));
    answer = { ok: true, value: value === undefined ? null : value, state: await state() };
  } catch (error) {
    answer = { ok: false, error: String(error && error.stack ? error.stack : error), state: await state() };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
