/**
 * The GraphQL IDE the gateway serves to browsers: GraphiQL from local npm assets, with the
 * schema explorer, ready example operations and a headers editor for the bearer token. It must
 * work with no internet at all, so the browser test blocks every request that is not to the
 * gateway and asserts none was even attempted.
 */
import { get } from "node:http";
import { gunzipSync } from "node:zlib";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Locator } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const OUTPUT = join(__dirname, "..", "..", "test-output");
/** Hosts that serve GraphQL IDEs and their fonts; an offline page must name none of them. */
const CDN_HOSTS = [
  "unpkg.com",
  "jsdelivr.net",
  "cdnjs.cloudflare.com",
  "esm.sh",
  "cdn.apollographql.com",
  "apollo-server-landing-page",
  "embeddable-sandbox",
  "fonts.googleapis.com",
  "fonts.gstatic.com",
];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** What an editor shows; Monaco renders spaces as no-break spaces. */
const textOf = async (locator: Locator) => (await locator.innerText()).replace(/\u00a0/g, " ");

const getHtml = (url: string) => fetch(url, { headers: { accept: "text/html" } });

/** node:http, not fetch: fetch would inflate the body and hide how it travelled. */
function rawGet(headers: Record<string, string>) {
  return new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
    get(stack.url, { headers: { accept: "text/html", ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) }),
      );
    }).on("error", reject);
  });
}

describe("the IDE page", () => {
  it("is GraphiQL with example operations and a placeholder bearer header", async () => {
    const res = await getHtml(stack.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("renderYogaGraphiQL");
    expect(html).toContain("query Me");
    expect(html).toContain("mutation SignIn");
    expect(html).toContain("Bearer <session token>");
  });

  it("keeps out of other sites' frames and says where it may load from and connect to", async () => {
    const res = await getHtml(stack.url);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const policy = res.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("default-src 'self'");
  });

  it("is sent gzipped to clients that take gzip, and plain to those that do not, as the same page", async () => {
    const zipped = await rawGet({ "accept-encoding": "gzip" });
    const plain = await rawGet({ "accept-encoding": "identity" });
    expect(zipped.encoding).toBe("gzip");
    expect(plain.encoding).toBeUndefined();
    expect(plain.body.toString()).toContain("renderYogaGraphiQL");
    expect(zipped.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
  });

  it("loads nothing from elsewhere: no CDN, no remote script, style or font", async () => {
    const html = await (await getHtml(stack.url)).text();
    for (const host of CDN_HOSTS) expect(html).not.toContain(host);
    expect(html).not.toMatch(/<script[^>]+src=["']?https?:/i);
    expect(html).not.toMatch(/<link[^>]+href=["']?https?:/i);
    expect(html).not.toMatch(/@import\s+(url\()?["']?https?:/i);
    expect(html).not.toMatch(/url\(["']?https?:\/\//i);
  });

  it("is switched off by GRAPHQL_IDE=false, leaving the endpoint to GraphQL clients", async () => {
    const off = await startStack({ env: { GRAPHQL_IDE: "false" } });
    try {
      const res = await getHtml(off.url);
      expect(res.headers.get("content-type")).not.toContain("text/html");
      expect(await res.text()).not.toContain("<html");
    } finally {
      await off.stop();
    }
  });
});

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`ide.test.ts: ${CHROMIUM} is absent; skipping the browser test.`);

describe.skipIf(!haveChromium)(`in headless Chromium (${CHROMIUM}), with no internet`, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("runs the example query with a pasted token and shows the answer", async () => {
    const account = await createTestAccount(stack);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const gateway = new URL(stack.url).host;
    const elsewhere: string[] = [];
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.protocol.startsWith("http") && url.host !== gateway) {
        elsewhere.push(url.href);
        return route.abort();
      }
      return route.continue();
    });
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.protocol.startsWith("http") && url.hostname !== "127.0.0.1") elsewhere.push(url.href);
    });

    await page.goto(stack.url);
    await page.locator(".graphiql-container").first().waitFor();
    await expect
      .poll(() => page.locator(".graphiql-tab-button").allTextContents())
      .toEqual(["Me", "SignIn"]);

    // The schema explorer knows the schema (introspection ran through the gateway).
    await page.getByLabel("Show Documentation Explorer").click();
    await page.locator(".graphiql-doc-explorer").getByText("Mutation", { exact: true }).click();
    await page.locator(".graphiql-doc-explorer").getByText("enableMfaDevice").first().waitFor();

    // The headers editor holds the placeholder; replace it with a real session token.
    const headers = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden)");
    await expect.poll(() => textOf(headers)).toContain("Bearer <session token>");
    await headers.click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(`{"Authorization": "Bearer ${account.rootToken}"}`);

    await page.locator(".graphiql-execute-button").click();
    const response = page.locator(".graphiql-response");
    await expect.poll(() => textOf(response), { timeout: 15_000 }).toContain('"userName": "root"');
    expect(await textOf(response)).toContain(`arn:aws:iam::${account.accountId}:root`);

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, "graphiql.png") });
    expect(elsewhere).toEqual([]);
    await page.close();
  });
});
