/**
 * The public endpoint's limits: each refusal is a typed error (BAD_USER_INPUT naming the limit)
 * with a sensible HTTP status, sent before anything runs. Plus CSRF prevention, CORS from
 * configuration, and introspection and the IDE off in production.
 */
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/free-port";
import { ConfigError, loadGatewayConfig } from "../../src/config";
import { errorCode, ok, type GraphQLResponse } from "../support/graphql";
import { createTestAccount, PASSWORD, type TestAccount } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import { awayFromStepEdge, codePair, createDevice } from "../support/totp";

const ALLOWED_ORIGIN = "https://console.example.com";
/** The least a production gateway needs besides NODE_ENV. */
const PRODUCTION = {
  NODE_ENV: "production",
  RECOVERY_CODE_PEPPER: "p".repeat(40),
  SMTP_URL: "smtp://mail.example:587",
  SMS_WEBHOOK_URL: "https://sms.example/send",
};

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { CORS_ORIGINS: ALLOWED_ORIGIN } });
});
afterAll(async () => {
  await stack?.stop();
});

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json(): GraphQLResponse;
}

async function send(
  url: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> },
): Promise<RawResponse> {
  const response = await fetch(url, {
    method: init.method ?? "POST",
    headers: init.headers ?? { "content-type": "application/json" },
    // Node's fetch sends bytes as they are; only the DOM typings lack Buffer.
    body: init.body as RequestInit["body"],
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: () => JSON.parse(text) as GraphQLResponse,
  };
}

const limitOf = (res: GraphQLResponse) => res.errors?.[0]?.extensions?.limit;

async function auditRows(account: TestAccount) {
  return stack.db.auditEvent.count({ where: { accountId: account.accountId } });
}

async function userCount(account: TestAccount) {
  return stack.db.user.count({ where: { accountId: account.accountId } });
}

const ENABLE = (alias: string, input: string) =>
  `${alias}: enableMfaDevice(input: ${input}) { serialNumber }`;

/** A fresh unassigned device and two codes that would enable it right now. */
async function deviceWithGoodCodes(account: TestAccount, name: string) {
  const device = await createDevice(stack, account.rootToken, name);
  const codes = codePair(device.seed, (await awayFromStepEdge(stack, 5)) - 1);
  const input = `{ userName: "root", serialNumber: "${device.serialNumber}", authenticationCode1: "${codes.authenticationCode1}", authenticationCode2: "${codes.authenticationCode2}" }`;
  return { device, codes, input };
}

async function assignedUser(serialNumber: string) {
  const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({ where: { serialNumber } });
  return row.userId;
}

/** Four aliased createAccount fields with fresh emails, tagged so a test finds its own. */
function fourCreateAccounts(tag: string) {
  const emails = ["a", "b", "c", "d"].map((a) => `${tag}-${a}-${Date.now()}@example.com`);
  const fields = emails
    .map(
      (email, i) =>
        `a${i}: createAccount(input: { email: "${email}", phone: "+14155550100", password: "${PASSWORD}" }) { account { accountId } }`,
    )
    .join("\n");
  return { emails, fields };
}

describe("aliases and cost: one request cannot carry a volley of verifications", () => {
  it("refuses 50 aliased enableMfaDevice with ALIASES before running any, even with good codes", async () => {
    const account = await createTestAccount(stack);
    const { device, codes } = await deviceWithGoodCodes(account, "volley");
    const before = await auditRows(account);
    const mutation = `mutation($input: EnableMfaDeviceInput!) {
      ${Array.from({ length: 50 }, (_, i) => ENABLE(`a${i}`, "$input")).join("\n")}
    }`;
    const res = await stack.gql(
      mutation,
      { input: { userName: "root", serialNumber: device.serialNumber, ...codes } },
      account.rootToken,
    );
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(limitOf(res)).toBe("ALIASES");
    expect(res.errors![0]!.message).toBe("The operation uses 50 aliases; at most 10 are allowed.");
    expect(res.data).toBeUndefined();
    expect(await assignedUser(device.serialNumber)).toBeNull();
    expect(await auditRows(account)).toBe(before);
    // The codes were good and unspent: one ordinary request enables the device with them.
    ok(
      await stack.gql(
        `mutation($input: EnableMfaDeviceInput!) { enableMfaDevice(input: $input) { serialNumber } }`,
        { input: { userName: "root", serialNumber: device.serialNumber, ...codes } },
        account.rootToken,
      ),
    );
    expect(await assignedUser(device.serialNumber)).not.toBeNull();
  });

  it("refuses four verification mutations by COST, running none, and lets three through", async () => {
    const account = await createTestAccount(stack);
    const { device, input } = await deviceWithGoodCodes(account, "costly");
    const four = `mutation { ${["a", "b", "c", "d"].map((a) => ENABLE(a, input)).join("\n")} }`;
    const refused = await stack.gql(four, {}, account.rootToken);
    expect(refused.status).toBe(400);
    expect(errorCode(refused)).toBe("BAD_USER_INPUT");
    expect(limitOf(refused)).toBe("COST");
    expect(refused.errors![0]!.message).toMatch(
      /^The operation costs \d+; at most 10000 is allowed\.$/,
    );
    expect(await assignedUser(device.serialNumber)).toBeNull();

    // Three do fit: three sign-ins in one request all run.
    const signIn = (alias: string) =>
      `${alias}: signIn(input: { email: "${account.email}", password: "${PASSWORD}" }) { status }`;
    const three = ok(
      await stack.gql<Record<string, { status: string }>>(
        `mutation { ${["a", "b", "c"].map(signIn).join("\n")} }`,
      ),
    );
    expect(Object.values(three).map((r) => r.status)).toEqual([
      "SIGNED_IN",
      "SIGNED_IN",
      "SIGNED_IN",
    ]);
  });

  it("refuses four aliased createAccount by COST: each hashes a password for anyone who asks", async () => {
    const { emails, fields } = fourCreateAccounts("cost");
    const res = await stack.gql(`mutation { ${fields} }`);
    expect(res.status).toBe(400);
    expect(limitOf(res)).toBe("COST");
    expect(await stack.db.account.count({ where: { email: { in: emails } } })).toBe(0);
  });

  it("refuses the whole request when a null through a defaulted variable would leave the rest uncosted", async () => {
    // A nullable variable with a default may feed a non-null argument; sent as null it passes
    // validation and fails only its own field, so every field beside it ran, uncosted.
    const { emails, fields } = fourCreateAccounts("nulled");
    const res = await stack.gql(
      `mutation($bad: CreateAccountInput = { email: "q@example.com", phone: "+14155550100", password: "${PASSWORD}" }) {
        ${fields}
        z: createAccount(input: $bad) { account { accountId } }
      }`,
      { bad: null },
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(await stack.db.account.count({ where: { email: { in: emails } } })).toBe(0);
    // Alone, the same null is a client error too, not an INTERNAL_SERVER_ERROR.
    const signIn = await stack.gql(
      `mutation($bad: SignInInput = { password: "x" }) { signIn(input: $bad) { status } }`,
      { bad: null },
    );
    expect(errorCode(signIn)).toBe("BAD_USER_INPUT");
  });

  it("refuses a large page of large pages by COST, and allows one page of 1000", async () => {
    const account = await createTestAccount(stack);
    const page = (alias: string) =>
      `${alias}: users(first: 1000) { edges { node { userName arn path } } pageInfo { hasNextPage } }`;
    ok(await stack.gql(`{ ${page("one")} }`, {}, account.rootToken));
    const res = await stack.gql(
      `{ ${["a", "b", "c", "d"].map(page).join(" ")} }`,
      {},
      account.rootToken,
    );
    expect(res.status).toBe(400);
    expect(limitOf(res)).toBe("COST");
  });
});

describe("document and body size", () => {
  it("refuses a document over 8192 bytes before parsing it, and creates nothing", async () => {
    const account = await createTestAccount(stack);
    const before = await userCount(account);
    const padding = `# ${"x".repeat(9000)}\n`;
    const res = await stack.gql(
      `${padding}mutation { createUser(input: { userName: "padded" }) { userName } }`,
      {},
      account.rootToken,
    );
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(limitOf(res)).toBe("DOCUMENT_SIZE");
    expect(res.errors![0]!.message).toContain("at most 8192 are allowed");
    expect(await userCount(account)).toBe(before);
  });

  it("refuses a document of more than 1000 tokens as BAD_USER_INPUT", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(`{ user { ${"arn ".repeat(1100)} } }`, {}, account.rootToken);
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain("1000 tokens");
  });

  it("names a variable of the wrong type ValidationError, as every BAD_USER_INPUT", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      `query($first: Int) { users(first: $first) { pageInfo { hasNextPage } } }`,
      { first: "abc" },
      account.rootToken,
    );
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.extensions!.iamCode).toBe("ValidationError");
  });

  it("never echoes a variable's value back, such as a password, in a wrong-shape refusal", async () => {
    const secret = "SuperSecretPw1-never-echoed";
    const signIn = `mutation($i: SignInInput!) { signIn(input: $i) { status } }`;
    const extra = await stack.gql(signIn, {
      i: { account: "a", userName: "u", password: secret, junk: 1 },
    });
    expect(errorCode(extra)).toBe("BAD_USER_INPUT");
    expect(extra.errors![0]!.message).toBe(
      'Variable "$i" got an invalid value: Field "junk" is not defined by type "SignInInput".',
    );
    const wrongType = await stack.gql(signIn, { i: { account: "a", userName: "u", password: 7 } });
    const codes = await stack.gql(
      `query($first: Int) { users(first: $first) { pageInfo { hasNextPage } } }`,
      { first: secret },
    );
    for (const res of [extra, wrongType, codes]) {
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(JSON.stringify(res.errors)).not.toContain(secret);
      expect(JSON.stringify(res.errors)).not.toMatch(/got invalid value/);
    }
  });

  it("answers text PostgreSQL cannot store with 400 and BAD_USER_INPUT, and no internal field", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      `mutation($input: SignInInput!) { signIn(input: $input) { status } }`,
      { input: { account: account.accountId, userName: "al\u0000ice", password: PASSWORD } },
    );
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.extensions).not.toHaveProperty("http");
  });

  it("refuses a body over the limit with 413 and a typed JSON error, not Express's HTML", async () => {
    const account = await createTestAccount(stack);
    const before = await userCount(account);
    const res = await send(stack.url, {
      headers: { "content-type": "application/json", authorization: `Bearer ${account.rootToken}` },
      body: JSON.stringify({
        query: `mutation($input: CreateUserInput!) { createUser(input: $input) { userName } }`,
        variables: { input: { userName: "huge", path: `/${"a".repeat(200_000)}/` } },
      }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.text).not.toContain("<");
    const body = res.json();
    expect(errorCode(body)).toBe("BAD_USER_INPUT");
    expect(limitOf(body)).toBe("BODY_SIZE");
    expect(body.errors![0]!.message).toBe(
      "The request body is larger than the limit of 102400 bytes.",
    );
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(await userCount(account)).toBe(before);
  });

  it("answers a persisted-query hash that does not match its query with a typed 400", async () => {
    const res = await send(stack.url, {
      body: JSON.stringify({
        query: "{ __typename }",
        extensions: { persistedQuery: { version: 1, sha256Hash: "abc" } },
      }),
    });
    expect(res.status).toBe(400);
    expect(errorCode(res.json())).toBe("BAD_USER_INPUT");
  });

  it("answers malformed JSON with a typed 400", async () => {
    const res = await send(stack.url, { body: '{"query": "{ user { userName } }"' });
    expect(res.status).toBe(400);
    expect(errorCode(res.json())).toBe("BAD_USER_INPUT");
    expect(res.json().errors![0]!.message).toBe("The request body is not valid JSON.");
  });

  it("answers a compressed body that does not inflate with a typed 400, and logs no error", async () => {
    const whole = gzipSync(JSON.stringify({ query: "{ __typename }" }));
    const bodies: [string, string | Buffer][] = [
      ["gzip", "xxxxxxxx"],
      ["deflate", "xxxxxxxx"],
      ["br", "xxxxxxxx"],
      ["gzip", whole.subarray(0, 20)],
    ];
    for (const [encoding, body] of bodies) {
      const res = await send(stack.url, {
        body,
        headers: { "content-type": "application/json", "content-encoding": encoding },
      });
      expect(res.status).toBe(400);
      expect(errorCode(res.json())).toBe("BAD_USER_INPUT");
      expect(res.json().errors![0]!.message).toBe("The request body could not be read.");
    }
    // The same body whole is fine, so the refusal above is about the damage, not gzip.
    const fine = await send(stack.url, {
      body: whole,
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
    });
    expect(fine.json().data).toEqual({ __typename: "Query" });
    expect(stack.logs.filter((line) => line.includes("unexpected error"))).toEqual([]);
  });
});

describe("operations this service does not have", () => {
  it("refuses a subscription as BAD_USER_INPUT, whatever it selects, and logs no error", async () => {
    for (const query of ["subscription { x }", "subscription S { user { arn } }"]) {
      const res = await send(stack.url, { body: JSON.stringify({ query }) });
      expect(res.status).toBe(400);
      expect(errorCode(res.json())).toBe("BAD_USER_INPUT");
      expect(res.json().errors![0]!.message).toBe("This service has no subscriptions.");
    }
    expect(stack.logs.filter((line) => line.includes("unexpected error"))).toEqual([]);
  });
});

describe("ill-formed Unicode", () => {
  const SIGN_IN = `mutation($input: SignInInput!) { signIn(input: $input) { status } }`;

  it("refuses a lone surrogate in a variable as BAD_USER_INPUT, for a real account too", async () => {
    // A real account matters: the lookup then reaches the user table, where Prisma's engine
    // failed on the surrogate and the caller saw INTERNAL_SERVER_ERROR.
    const account = await createTestAccount(stack);
    for (const userName of ["\uD800", "a\uDC00b"]) {
      const res = await stack.gql(SIGN_IN, {
        input: { account: account.accountId, userName, password: PASSWORD },
      });
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).toContain("well-formed Unicode");
    }
  });

  it("finds one nested in a list of tags, and writes nothing", async () => {
    const account = await createTestAccount(stack);
    const devices = () =>
      stack.db.virtualMfaDevice.count({ where: { accountId: account.accountId } });
    const before = await devices();
    const res = await stack.gql(
      `mutation($input: CreateVirtualMfaDeviceInput!) {
        createVirtualMfaDevice(input: $input) { virtualMfaDevice { serialNumber } }
      }`,
      {
        input: {
          virtualMfaDeviceName: "tagged",
          tags: [
            { key: "team", value: "ok" },
            { key: "owner", value: "\uDBFF" },
          ],
        },
      },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain("well-formed Unicode");
    expect(await devices()).toBe(before);
  });

  it("still accepts a well-formed surrogate pair", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(SIGN_IN, {
      input: { account: account.accountId, userName: "emoji\uD83D\uDE00", password: PASSWORD },
    });
    // Unknown user, answered as any failed sign-in: the text itself was acceptable.
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });
});

describe("HTTP batching", () => {
  it("refuses a batch of operations and runs none of them", async () => {
    const account = await createTestAccount(stack);
    const before = await userCount(account);
    const create = (userName: string) => ({
      query: `mutation { createUser(input: { userName: "${userName}" }) { userName } }`,
    });
    const res = await send(stack.url, {
      headers: { "content-type": "application/json", authorization: `Bearer ${account.rootToken}` },
      body: JSON.stringify([create("batched-1"), create("batched-2")]),
    });
    expect(res.status).toBe(400);
    expect(errorCode(res.json())).toBe("BAD_USER_INPUT");
    expect(res.json().errors![0]!.message).toContain("batching");
    expect(await userCount(account)).toBe(before);
  });
});

describe("CSRF prevention", () => {
  const createUser = (userName: string) =>
    `mutation { createUser(input: { userName: "${userName}", password: "${PASSWORD}" }) { userName } }`;

  it("refuses a text/plain POST, which a form on any site could send, and runs nothing", async () => {
    const account = await createTestAccount(stack);
    const before = await userCount(account);
    const res = await send(stack.url, {
      headers: { "content-type": "text/plain", authorization: `Bearer ${account.rootToken}` },
      body: JSON.stringify({ query: createUser("csrf-victim") }),
    });
    expect(res.status).toBe(400);
    expect(errorCode(res.json())).toBe("BAD_USER_INPUT");
    expect(res.json().errors![0]!.message).toContain("Cross-Site Request Forgery");
    expect(await userCount(account)).toBe(before);
  });

  it("refuses a GET without a preflight header, and a GET mutation even with one", async () => {
    const account = await createTestAccount(stack);
    const before = await userCount(account);
    const get = (query: string, headers: Record<string, string>) =>
      send(`${stack.url}?query=${encodeURIComponent(query)}`, {
        method: "GET",
        headers: { authorization: `Bearer ${account.rootToken}`, ...headers },
      });
    const plain = await get(createUser("csrf-get"), {});
    expect(plain.status).toBe(400);
    expect(plain.json().errors![0]!.message).toContain("Cross-Site Request Forgery");
    const preflighted = await get(createUser("csrf-get"), { "apollo-require-preflight": "true" });
    expect(preflighted.status).toBe(405);
    expect(errorCode(preflighted.json())).toBe("BAD_USER_INPUT");
    expect(await userCount(account)).toBe(before);
    // A query by GET with the header is fine: that is what the header is for.
    const query = await get("{ user { userName } }", { "apollo-require-preflight": "true" });
    expect(query.status).toBe(200);
    expect(query.json().data).toEqual({ user: { userName: "root" } });
  });
});

describe("CORS", () => {
  const preflight = (origin: string) =>
    send(stack.url, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });

  it("lets a configured origin call the endpoint", async () => {
    const res = await preflight(ALLOWED_ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
    const post = await stack.gql("{ __typename }", {}, undefined, { origin: ALLOWED_ORIGIN });
    expect(post.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
    expect(post.headers.get("access-control-expose-headers")).toContain("x-request-id");
  });

  it("gives any other origin no CORS headers, so its pages cannot read answers", async () => {
    const res = await preflight("https://evil.example");
    // A plain refusal of the preflight, not a GraphQL error.
    expect(res.status).toBe(204);
    expect(res.text).toBe("");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const post = await stack.gql("{ __typename }", {}, undefined, {
      origin: "https://evil.example",
    });
    expect(post.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("depth and root fields (limits tightened for this stack)", () => {
  let tight: Stack;
  let account: TestAccount;
  beforeAll(async () => {
    tight = await startStack({ env: { GRAPHQL_MAX_DEPTH: "5", GRAPHQL_MAX_ROOT_FIELDS: "3" } });
    account = await createTestAccount(tight);
  });
  afterAll(async () => {
    await tight?.stop();
  });

  it("refuses an operation nested deeper than the limit", async () => {
    const deep = `{ mfaDevices { edges { node { virtualMfaDevice { user { userName } } } } } }`;
    const res = await tight.gql(deep, {}, account.rootToken);
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(limitOf(res)).toBe("DEPTH");
    expect(res.errors![0]!.message).toBe(
      "The operation nests fields 6 deep; at most 5 is allowed.",
    );
    const shallower = `{ mfaDevices { edges { node { virtualMfaDevice { serialNumber } } } } }`;
    ok(await tight.gql(shallower, {}, account.rootToken));
  });

  it("counts depth through fragments", async () => {
    const res = await tight.gql(
      `{ mfaDevices { edges { ...E } } } fragment E on MfaDeviceEdge { node { ... on MfaDevice { virtualMfaDevice { user { arn } } } } }`,
      {},
      account.rootToken,
    );
    expect(limitOf(res)).toBe("DEPTH");
  });

  it("refuses more root fields than the limit, without aliases", async () => {
    const res = await tight.gql(
      `{ user { userName } users { pageInfo { hasNextPage } } virtualMfaDevices { pageInfo { hasNextPage } } mfaDevices { pageInfo { hasNextPage } } }`,
      {},
      account.rootToken,
    );
    expect(res.status).toBe(400);
    expect(limitOf(res)).toBe("ROOT_FIELDS");
    expect(res.errors![0]!.message).toBe(
      "The operation selects 4 root fields; at most 3 are allowed.",
    );
  });

  it("does not count introspection against the depth limit", async () => {
    const res = ok(
      await tight.gql<{ __type: { fields: unknown[] } }>(
        `{ __type(name: "User") { fields { type { ofType { ofType { ofType { name } } } } } } }`,
      ),
    );
    expect(res.__type.fields.length).toBeGreaterThan(0);
  });
});

describe("production", () => {
  let production: Stack;
  let metricsPort: number;
  beforeAll(async () => {
    metricsPort = await freePort();
    production = await startStack({ env: { ...PRODUCTION, METRICS_PORT: String(metricsPort) } });
  });
  afterAll(async () => {
    await production?.stop();
  });

  it("refuses introspection and hides schema hints in errors", async () => {
    const res = await production.gql("{ __schema { types { name } } }");
    expect(res.status).toBe(400);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain("introspection");
    const typo = await production.gql("{ usr { userName } }");
    expect(typo.errors![0]!.message).not.toContain("Did you mean");
  });

  it("serves no IDE to a browser", async () => {
    const res = await send(production.url, { method: "GET", headers: { accept: "text/html" } });
    expect(res.headers.get("content-type")).not.toContain("text/html");
    expect(res.text).not.toContain("<html");
  });

  it("serves /metrics on its own port only, not to the public one", async () => {
    expect((await fetch(`${production.origin}/metrics`)).status).toBe(404);
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# TYPE mfa_gateway_verifications_total counter$/m);
  });
});

describe("configuration", () => {
  it("turns introspection and the IDE off in production and on elsewhere", () => {
    const production = loadGatewayConfig(PRODUCTION);
    expect([production.GRAPHQL_INTROSPECTION, production.GRAPHQL_IDE]).toEqual([false, false]);
    const development = loadGatewayConfig({ NODE_ENV: "development" });
    expect([development.GRAPHQL_INTROSPECTION, development.GRAPHQL_IDE]).toEqual([true, true]);
    const opted = loadGatewayConfig({ ...PRODUCTION, GRAPHQL_INTROSPECTION: "true" });
    expect([opted.GRAPHQL_INTROSPECTION, opted.GRAPHQL_IDE]).toEqual([true, false]);
  });

  it("moves /metrics off the public port in production, unless told where", () => {
    expect(loadGatewayConfig(PRODUCTION).METRICS_PORT).toBe(9465);
    expect(loadGatewayConfig({ ...PRODUCTION, METRICS_PORT: "0" }).METRICS_PORT).toBe(0);
    expect(loadGatewayConfig({ NODE_ENV: "development" }).METRICS_PORT).toBe(0);
  });

  it("needs mail and SMS delivery in production, or an explicit choice to only log messages", () => {
    const { SMTP_URL: _smtp, SMS_WEBHOOK_URL: _sms, ...undelivered } = PRODUCTION;
    expect(() => loadGatewayConfig(undelivered)).toThrow(/SMTP_URL.*\n?.*SMS_WEBHOOK_URL/s);
    expect(() => loadGatewayConfig({ ...undelivered, SMTP_URL: PRODUCTION.SMTP_URL })).toThrow(
      /SMS_WEBHOOK_URL/,
    );
    expect(loadGatewayConfig({ ...undelivered, NOTIFICATIONS_LOG_ONLY: "true" })).toMatchObject({
      NOTIFICATIONS_LOG_ONLY: true,
    });
    // A gateway that leaves delivery to others needs neither.
    expect(() =>
      loadGatewayConfig({ ...undelivered, OUTBOX_SENDER_ENABLED: "false" }),
    ).not.toThrow();
    // The codes do not cross a network in clear.
    for (const clear of [
      "http://sms.example/send",
      "HTTP://sms.example/send",
      "ws://sms.example",
    ]) {
      expect(() => loadGatewayConfig({ ...PRODUCTION, SMS_WEBHOOK_URL: clear })).toThrow(
        /SMS_WEBHOOK_URL.*https/,
      );
    }
    expect(
      loadGatewayConfig({ NODE_ENV: "development", SMS_WEBHOOK_URL: "http://127.0.0.1:9/x" })
        .SMS_WEBHOOK_URL,
    ).toBe("http://127.0.0.1:9/x");
    // Outside production, messages without a transport are logged, as in development.
    expect(loadGatewayConfig({ NODE_ENV: "development" }).SMTP_URL).toBeUndefined();
  });

  it("takes TRUST_PROXY as a hop count or as the proxies' addresses and ranges", () => {
    expect(loadGatewayConfig({}).TRUST_PROXY).toBe(0);
    expect(loadGatewayConfig({ TRUST_PROXY: "2" }).TRUST_PROXY).toBe(2);
    expect(
      loadGatewayConfig({ TRUST_PROXY: " 10.0.0.0/8 , loopback,2001:db8::1" }).TRUST_PROXY,
    ).toEqual(["10.0.0.0/8", "loopback", "2001:db8::1"]);
    // A /0 would trust every address; Express refuses it, so the configuration does first.
    for (const bad of ["11", "proxy.example", "10.0.0.0/99", "1,", "0.0.0.0/0", "::/0"]) {
      expect(() => loadGatewayConfig({ TRUST_PROXY: bad })).toThrow(/TRUST_PROXY/);
    }
  });

  it("refuses an IDE without introspection, and a CORS origin with a path", () => {
    expect(() =>
      loadGatewayConfig({ GRAPHQL_IDE: "true", GRAPHQL_INTROSPECTION: "false" }),
    ).toThrow(ConfigError);
    expect(() =>
      loadGatewayConfig({ CORS_ORIGINS: "https://ok.example,https://bad.example/x" }),
    ).toThrow(/CORS_ORIGINS/);
    expect(
      loadGatewayConfig({ CORS_ORIGINS: " https://a.example , http://localhost:3000 " })
        .CORS_ORIGINS,
    ).toEqual(["https://a.example", "http://localhost:3000"]);
  });

  it("has documented defaults for every limit", () => {
    const config = loadGatewayConfig({});
    expect({
      depth: config.GRAPHQL_MAX_DEPTH,
      cost: config.GRAPHQL_MAX_COST,
      verification: config.GRAPHQL_VERIFICATION_COST,
      aliases: config.GRAPHQL_MAX_ALIASES,
      rootFields: config.GRAPHQL_MAX_ROOT_FIELDS,
      document: config.GRAPHQL_MAX_DOCUMENT_BYTES,
      tokens: config.GRAPHQL_MAX_TOKENS,
      body: config.HTTP_BODY_LIMIT_BYTES,
      cors: config.CORS_ORIGINS,
    }).toEqual({
      depth: 10,
      cost: 10_000,
      verification: 3_000,
      aliases: 10,
      rootFields: 10,
      document: 8192,
      tokens: 1000,
      body: 102_400,
      cors: [],
    });
  });
});
