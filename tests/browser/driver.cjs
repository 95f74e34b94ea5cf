// One headless Chromium for a whole test session, driven by Python over stdin/stdout.
//
// Each line in is a JSON request; each line out is its JSON answer. Requests:
//   {"op": "mermaid", "diagrams": [text, ...]}   parse and render each diagram in ONE page with the
//        real `mermaid` package (loaded from a local file): [{error, nodes: [{id, x, y, w, h}]}]
//   {"op": "open", "url": "file:///...", "width": 1400, "height": 1000, "script": "async () => ..."}
//        open a page, run `script` in it, and say what it returned, every request the page made,
//        and its console errors.
//   {"op": "screenshot", "url": ..., "width": ..., "height": ..., "path": ..., "fullPage": false}
// The browser is Debian's /usr/bin/chromium (never downloaded); nothing leaves the machine:
// every request that is not a file:// URL is recorded and aborted.
"use strict";
const path = require("path");
const readline = require("readline");

const NODE_DIR = process.env.COLTIVA_NODE_DIR || path.resolve(__dirname, "..", "..", ".cache", "node");
const { chromium } = require(path.join(NODE_DIR, "node_modules", "playwright-core"));
const MERMAID = path.join(NODE_DIR, "node_modules", "mermaid", "dist", "mermaid.min.js");
const HARNESS = path.join(__dirname, "mermaid.html");
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

async function newPage(context, width, height) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  const requests = [];
  const errors = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    return url.startsWith("file://") ? route.continue() : route.abort();
  });
  return { page, requests, errors };
}

let harness = null; // one page with Mermaid loaded, kept for the whole session

async function mermaid(context, diagrams) {
  if (harness === null) {
    const { page, errors } = await newPage(context, 1600, 1200);
    await page.goto("file://" + HARNESS + "?mermaid=" + encodeURIComponent("file://" + MERMAID));
    await page.waitForFunction(() => window.mermaidReady === true || window.mermaidFailed, null, { timeout: 30000 });
    const failed = await page.evaluate(() => window.mermaidFailed || null);
    if (failed) throw new Error("mermaid did not load: " + failed + " " + errors.join("; "));
    harness = page;
  }
  return await harness.evaluate((list) => window.renderAll(list), diagrams);
}

async function open(context, req) {
  const { page, requests, errors } = await newPage(context, req.width || 1400, req.height || 1000);
  await page.goto(req.url);
  let result = null;
  if (req.script) result = await page.evaluate(`(${req.script})()`);
  if (req.screenshot) await page.screenshot({ path: req.screenshot, fullPage: !!req.fullPage });
  await page.close();
  return { result, requests, errors };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.COLTIVA_CHROMIUM || "/usr/bin/chromium",
    args: FLAGS,
    headless: true,
  });
  const context = await browser.newContext({ offline: true, serviceWorkers: "block" });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  process.stdout.write(JSON.stringify({ ready: true, version: browser.version() }) + "\n");
  for await (const line of rl) {
    if (!line.trim()) continue;
    let answer;
    try {
      const req = JSON.parse(line);
      if (req.op === "mermaid") answer = { ok: true, result: await mermaid(context, req.diagrams) };
      else if (req.op === "open") answer = { ok: true, result: await open(context, req) };
      else answer = { ok: false, error: "unknown op " + req.op };
    } catch (e) {
      answer = { ok: false, error: String(e && e.stack || e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  await browser.close();
}

main().catch((e) => { process.stdout.write(JSON.stringify({ ready: false, error: String(e && e.stack || e) }) + "\n"); process.exit(1); });
