// The dashboard in a real browser: Debian's headless Chromium driven by puppeteer-core loads
// `llmledger serve` over the seeded ledger (cli/tests/support/dashboard_seed.rs), checks the figures shown
// equal the hand-computed totals, opens a user's drill-down, checks the hostile user id renders as text,
// and saves screenshots under target/dashboard/. Run by scripts/browser-test.sh (which builds the binaries).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const root = resolve(import.meta.dirname, "../..");
const bin = process.env.LLMLEDGER_BIN_DIR ?? join(root, "target/x86_64-unknown-linux-gnu/debug");
const shots = join(root, "target/dashboard");
const HOSTILE = "<img src=x onerror=alert(1)>";

let dir, server, browser, page, url;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmledger-dashboard-"));
  mkdirSync(shots, { recursive: true });
  const store = execFileSync(join(bin, "examples/dashboard_seed"), [join(dir, "ledger.db")]).toString().trim();
  server = spawn(join(bin, "llmledger"), ["serve", "--store", store, "--addr", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = await createInterface({ input: server.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value]);
  url = line.match(/http:\/\/\S+\//)[0];
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  page.on("dialog", (d) => { throw new Error("a dialog opened: " + d.message()); });
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = (sel) => page.$eval(sel, (e) => e.textContent);

// The cells of the table under `container`, row by row.
const cells = (container) =>
  page.$$eval(`${container} tbody tr`, (rows) => rows.map((r) => [...r.children].map((td) => td.textContent)));

test("the totals shown are the ledger's exact totals", async () => {
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  // $0.004 + $0.0125 + $0.00075 (+ one unpriced call) over 4 requests of 1000 input / 100 output tokens.
  assert.equal(await text("#total-cost"), "0.01725");
  assert.equal(await text("#total-currency"), "USD");
  assert.equal(await text("#total-requests"), "4");
  assert.equal(await text("#total-unpriced"), "1");
  assert.equal(await text("#total-input"), "4000");
  const users = await cells("#top-user");
  // Sorted by cost: alice 0.004 + 0.0125, the hostile id 0.00075, bob 0 (unpriced).
  assert.deepEqual(users.map((r) => [r[0], r[1]]), [["alice", "0.0165"], [HOSTILE, "0.00075"], ["bob", "0"]]);
  assert.deepEqual(await cells("#unpriced"), [["openai", "gpt-mystery", "1", "1"]]);
  const bars = await page.evaluate(() => Chart.getChart("spend-chart").data.labels);
  assert.deepEqual(bars, ["2026-11-01", "2026-11-02"]);
  await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });
});

test("the hostile user id renders as text, never as an element", async () => {
  assert.equal(await page.$$eval("img", (imgs) => imgs.length), 0);
  const shown = await page.$$eval("#top-user td", (tds) => tds.map((td) => td.textContent));
  assert.ok(shown.includes(HOSTILE));
});

test("the drill-down shows one user's models and days", async () => {
  await page.$$eval("#top-user tbody tr", (rows) => rows.find((r) => r.firstChild.textContent === "alice").click());
  await page.waitForFunction(() => document.querySelectorAll("#drill-days tbody tr").length > 0);
  assert.equal(await text("#drill-user"), "alice");
  const models = await cells("#drill-models");
  // [model, cost, requests, …]: claude-sonnet-4 $0.0125 then gpt-4o $0.004, one request each.
  assert.deepEqual(models.map((r) => r.slice(0, 3)), [["claude-sonnet-4", "0.0125", "1"], ["gpt-4o", "0.004", "1"]]);
  const days = await cells("#drill-days");
  assert.deepEqual(days.map((r) => [r[0], r[1]]), [["2026-11-01", "0.004"], ["2026-11-02", "0.0125"]]);
  await page.screenshot({ path: join(shots, "drill-down.png"), fullPage: true });
});

test("the currency and time-zone switch re-query the ledger", async () => {
  await page.$eval("#currency", (e) => { e.value = "KRW"; });
  await page.$eval("#rate", (e) => { e.value = "1391.5"; });
  await page.$eval("#tz", (e) => { e.value = "Asia/Seoul"; });
  await page.click("#apply");
  await page.waitForSelector("body[data-ready=true]");
  // $0.01725 × 1391.5 = ₩24.003375; in Seoul the 16:00Z call falls on 3 Nov.
  assert.equal(await text("#total-cost"), "24.003375");
  assert.equal(await text("#total-currency"), "KRW");
  const bars = await page.evaluate(() => Chart.getChart("spend-chart").data.labels);
  assert.deepEqual(bars, ["2026-11-01", "2026-11-02", "2026-11-03"]);
  await page.screenshot({ path: join(shots, "krw-seoul.png"), fullPage: true });
});
