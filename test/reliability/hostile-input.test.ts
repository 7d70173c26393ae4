/**
 * Hostile input, property-based (fast-check): random and malformed values in every argument of
 * the account-facing queries and mutations — huge strings, Unicode tricks (RTL override,
 * zero-width, NUL, lone surrogates, homoglyphs), control characters, codes with spaces, letters
 * and leading zeros, serial numbers of another account, bad cursors and page sizes, and wrong
 * types through the variables JSON. Every answer is a correct result or a typed error from the
 * closed set, never INTERNAL_SERVER_ERROR, and a refused request leaves the account's entities
 * (users, devices, tags, watermarks, sessions) exactly as they were.
 *
 * Not in the snapshot, on purpose: audit events, MFA failure streaks and challenge attempt
 * counters, which the product writes *because* a request was refused.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
  type GraphQLArgument,
  type GraphQLInputType,
} from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors";
import { buildGatewaySchema } from "../../src/schema/build";
import { createTestAccount, createTestUser, type TestAccount } from "../support/fixtures";
import type { GraphQLResponse } from "../support/graphql";
import { enrolForSignIn, passwordSession } from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { createDevice } from "../support/totp";

const RUNS = Number(process.env.HOSTILE_RUNS ?? 60);

let stack: Stack;
let mine: TestAccount;
let aliceToken: string;
let aliceSerial: string;
let otherSerial: string;

beforeAll(async () => {
  stack = await startStack();
  mine = await createTestAccount(stack);
  await createTestUser(stack, mine.rootToken, "alice");
  aliceToken = await passwordSession(stack, { account: mine.accountId, userName: "alice" });
  aliceSerial = (await enrolForSignIn(stack, mine.rootToken, "alice", "alice-phone")).serialNumber;
  const other = await createTestAccount(stack);
  otherSerial = (await createDevice(stack, other.rootToken, "theirs")).serialNumber;
});
afterAll(async () => {
  await stack?.stop();
});

const ALLOWED = new Set<string>(
  Object.values(ErrorCode).filter((c) => c !== "INTERNAL_SERVER_ERROR"),
);

const tricks = [
  "\u202Ealice", // right-to-left override
  "ali\u200Bce", // zero-width space
  "alice\u0000", // NUL
  "\uD800", // lone high surrogate
  "\uDC00x", // lone low surrogate
  "аlice", // Cyrillic а
  "ALICE",
  "alice ",
  "\u0007\u001b[31m\r\n",
  "../../etc/passwd",
  "' OR 1=1 --",
  "%00",
  "${jndi:ldap://x}",
  "",
  " ",
  "x".repeat(100_000),
  "é".repeat(5000),
  "🙂".repeat(300),
];
const codes = [
  "123 456",
  "12345a",
  "0000000",
  "000000",
  "1234567",
  "-12345",
  "１２３４５６",
  "",
  "99999999999",
];

/** A hostile string: tricks, codes, serials of this and the other account, or random text. */
const hostileString = () =>
  fc.oneof(
    fc.constantFrom(...tricks),
    fc.constantFrom(...codes),
    fc.constantFrom(
      otherSerial,
      `${otherSerial}\u0000`,
      otherSerial.replace("mfa/", "mfa/../"),
      "arn:aws:iam::000000000000:mfa/x",
    ),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 20 }),
  );
const hostileInt = () =>
  fc.oneof(fc.constantFrom(-1, 0, 1, 1000, 1001, 2 ** 31, -(2 ** 31) - 1), fc.integer());

interface Op {
  name: string;
  query: string;
  /** Who calls: the root, alice (an ordinary user) or nobody. */
  as: "root" | "alice" | "anonymous";
  variables: fc.Arbitrary<Record<string, unknown>>;
}

const s = hostileString;
const ops = (): Op[] => [
  {
    name: "user",
    as: "alice",
    query: `query($u: String) { user(userName: $u) { userName arn } }`,
    variables: fc.record({ u: s() }),
  },
  {
    name: "users",
    as: "root",
    query: `query($p: String, $f: Int, $a: String) { users(pathPrefix: $p, first: $f, after: $a) { edges { node { userName } } pageInfo { endCursor } } }`,
    variables: fc.record({ p: s(), f: hostileInt(), a: s() }),
  },
  {
    name: "virtualMfaDevices",
    as: "root",
    query: `query($f: Int, $a: String) { virtualMfaDevices(first: $f, after: $a) { edges { node { serialNumber } } } }`,
    variables: fc.record({ f: hostileInt(), a: fc.oneof(s(), fc.base64String()) }),
  },
  {
    name: "mfaDevices",
    as: "alice",
    query: `query($u: String, $f: Int, $a: String) { mfaDevices(userName: $u, first: $f, after: $a) { edges { node { serialNumber } } } }`,
    variables: fc.record({ u: s(), f: hostileInt(), a: s() }),
  },
  {
    name: "virtualMfaDevice",
    as: "alice",
    query: `query($s: String!) { virtualMfaDevice(serialNumber: $s) { serialNumber } }`,
    variables: fc.record({ s: s() }),
  },
  {
    name: "createUser",
    as: "root",
    query: `mutation($i: CreateUserInput!) { createUser(input: $i) { userName } }`,
    variables: fc.record({ i: fc.record({ userName: s(), path: s(), password: s() }) }),
  },
  {
    name: "deleteUser",
    as: "root",
    query: `mutation($i: DeleteUserInput!) { deleteUser(input: $i) { __typename } }`,
    variables: fc.record({ i: fc.record({ userName: s() }) }),
  },
  {
    name: "createVirtualMfaDevice",
    as: "alice",
    query: `mutation($i: CreateVirtualMfaDeviceInput!) { createVirtualMfaDevice(input: $i) { virtualMfaDevice { serialNumber } } }`,
    variables: fc.record({
      i: fc.record({
        virtualMfaDeviceName: s(),
        path: s(),
        tags: fc.array(fc.record({ key: s(), value: s() }), { maxLength: 3 }),
      }),
    }),
  },
  {
    name: "enableMfaDevice",
    as: "root",
    query: `mutation($i: EnableMfaDeviceInput!) { enableMfaDevice(input: $i) { serialNumber } }`,
    variables: fc.record({
      i: fc.record({
        userName: fc.oneof(s(), fc.constant("alice")),
        serialNumber: fc.oneof(s(), fc.constant(aliceSerial)),
        authenticationCode1: s(),
        authenticationCode2: s(),
      }),
    }),
  },
  {
    name: "resyncMfaDevice",
    as: "alice",
    query: `mutation($i: ResyncMfaDeviceInput!) { resyncMfaDevice(input: $i) { serialNumber } }`,
    variables: fc.record({
      i: fc.record({
        userName: fc.oneof(s(), fc.constant("alice")),
        serialNumber: fc.oneof(s(), fc.constant(aliceSerial)),
        authenticationCode1: s(),
        authenticationCode2: s(),
      }),
    }),
  },
  {
    name: "deactivateMfaDevice",
    as: "alice",
    query: `mutation($i: DeactivateMfaDeviceInput!) { deactivateMfaDevice(input: $i) { serialNumber } }`,
    variables: fc.record({
      i: fc.record({ serialNumber: fc.oneof(s(), fc.constant(aliceSerial)), userName: s() }),
    }),
  },
  {
    name: "deleteVirtualMfaDevice",
    as: "root",
    query: `mutation($i: DeleteVirtualMfaDeviceInput!) { deleteVirtualMfaDevice(input: $i) { __typename } }`,
    variables: fc.record({ i: fc.record({ serialNumber: s() }) }),
  },
  {
    name: "tagMfaDevice",
    as: "root",
    query: `mutation($i: TagMfaDeviceInput!) { tagMfaDevice(input: $i) { serialNumber } }`,
    variables: fc.record({
      i: fc.record({
        serialNumber: fc.oneof(s(), fc.constant(aliceSerial)),
        tags: fc.array(fc.record({ key: s(), value: s() }), { maxLength: 60 }),
      }),
    }),
  },
  {
    name: "untagMfaDevice",
    as: "root",
    query: `mutation($i: UntagMfaDeviceInput!) { untagMfaDevice(input: $i) { serialNumber } }`,
    variables: fc.record({
      i: fc.record({
        serialNumber: fc.oneof(s(), fc.constant(otherSerial)),
        tagKeys: fc.array(s(), { maxLength: 5 }),
      }),
    }),
  },
  {
    name: "getSessionToken",
    as: "alice",
    query: `mutation($i: GetSessionTokenInput!) { getSessionToken(input: $i) { token } }`,
    variables: fc.record({
      i: fc.record({ serialNumber: fc.oneof(s(), fc.constant(aliceSerial)), tokenCode: s() }),
    }),
  },
  {
    name: "signIn",
    as: "anonymous",
    query: `mutation($i: SignInInput!) { signIn(input: $i) { status } }`,
    variables: fc.record({
      i: fc.record({
        account: fc.oneof(s(), fc.constant(mine.accountId)),
        userName: s(),
        password: s(),
      }),
    }),
  },
  {
    name: "answerMfaChallenge",
    as: "anonymous",
    query: `mutation($i: AnswerMfaChallengeInput!) { answerMfaChallenge(input: $i) { usedRecoveryCode } }`,
    variables: fc.record({ i: fc.record({ challenge: s(), code: s(), serialNumber: s() }) }),
  },
];

/** A hash of the account's entities: users, devices (seal, drift, watermark, tags), sessions. */
async function snapshot(): Promise<string> {
  const users = await stack.db.$queryRaw<unknown[]>`
    SELECT "id", "userName", "path", "arn", "isAdmin", "passwordHash" FROM "User"
    WHERE "accountId" = ${mine.accountId} ORDER BY "id"`;
  const devices = await stack.db.$queryRaw<unknown[]>`
    SELECT row_to_json(d)::text AS row FROM "VirtualMfaDevice" d
    WHERE "accountId" = ${mine.accountId} OR "serialNumber" = ${otherSerial} ORDER BY "id"`;
  const sessions = await stack.db.session.count({ where: { accountId: mine.accountId } });
  return createHash("sha256")
    .update(JSON.stringify([users, devices, sessions]))
    .digest("hex");
}

async function call(op: Op, variables: unknown): Promise<GraphQLResponse> {
  const token = op.as === "root" ? mine.rootToken : op.as === "alice" ? aliceToken : undefined;
  const response = await fetch(stack.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: op.query, variables }),
  });
  const raw = await response.text();
  let body: { data?: Record<string, unknown> | null; errors?: GraphQLResponse["errors"] };
  try {
    body = JSON.parse(raw) as typeof body;
  } catch {
    throw new Error(
      `${op.name}: HTTP ${response.status}, not a GraphQL answer: ${raw.slice(0, 200)}`,
    );
  }
  return { status: response.status, ...body, headers: response.headers, raw };
}

/** The property every answer must have; a refused one must also leave the snapshot alone. */
async function checkAnswer(op: Op, variables: unknown) {
  const before = await snapshot();
  const res = await call(op, variables);
  expect(res.status, `${op.name} HTTP status`).not.toBe(500);
  for (const error of res.errors ?? []) {
    expect(ALLOWED, `${op.name}: ${JSON.stringify(error).slice(0, 300)}`).toContain(
      String(error.extensions?.code),
    );
  }
  if (res.errors?.length)
    expect(await snapshot(), `${op.name} changed the database while refusing`).toBe(before);
  return res;
}

const wrongTypes = () =>
  fc.oneof(
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
    fc.string(),
    fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 5 }),
    fc.integer({ min: 50, max: 3000 }).map((depth) => {
      let value: unknown = "x";
      for (let i = 0; i < depth; i++) value = i % 2 ? { input: value } : [value];
      return value;
    }),
  );

describe("hostile input", () => {
  const each = ops;
  it("every query and mutation answers hostile strings, codes, serials and cursors with a typed error or a correct result, and refusals change nothing", async () => {
    const all = each();
    const tally = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...all).chain((op) => fc.tuple(fc.constant(op), op.variables)),
        async ([op, variables]) => {
          const res = await checkAnswer(op, variables);
          const outcome = `${op.name}:${res.errors?.[0]?.extensions?.code ?? "OK"}`;
          tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
        },
      ),
      { numRuns: RUNS * 3 },
    );
    console.log("[hostile input] outcomes:", JSON.stringify(Object.fromEntries([...tally].sort())));
  }, 180_000);

  it("wrong types and deep nesting through the variables JSON are BAD_USER_INPUT, never internal errors", async () => {
    const all = each();
    const codesSeen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...all),
        wrongTypes(),
        fc.constantFrom("whole", "field"),
        async (op, value, where) => {
          const variables =
            where === "whole"
              ? { i: value, u: value, s: value, f: value, a: value, p: value }
              : { i: { userName: value, serialNumber: value, code: value }, f: value };
          const res = await checkAnswer(op, variables);
          const code = String(res.errors?.[0]?.extensions?.code ?? "OK");
          codesSeen.set(code, (codesSeen.get(code) ?? 0) + 1);
        },
      ),
      { numRuns: RUNS * 2 },
    );
    console.log(
      "[hostile input] wrong types answered:",
      JSON.stringify(Object.fromEntries(codesSeen)),
    );
  }, 180_000);

  it("answers an explicit null in every nullable argument and input field with a typed error or a result", async () => {
    // GraphQL applies a default only to an absent field: an explicit null reaches the resolver
    // as null, which once crashed createUser and createVirtualMfaDevice.
    const schema = await buildGatewaySchema();
    const seen: string[] = [];
    for (const [kind, root] of [
      ["query", schema.getQueryType()!],
      ["mutation", schema.getMutationType()!],
    ] as const) {
      for (const field of Object.values(root.getFields())) {
        if (field.name.startsWith("_") || field.args.length === 0) continue;
        const selection = isScalarType(getNamedType(field.type)) ? "" : " { __typename }";
        const query =
          `${kind}(${field.args.map((a) => `$${a.name}: ${a.type.toString()}`).join(", ")}) ` +
          `{ ${field.name}(${field.args.map((a) => `${a.name}: $${a.name}`).join(", ")})${selection} }`;
        for (const variables of withOneNull(field.args)) {
          for (const as of ["root", "alice"] as const) {
            await checkAnswer({ name: field.name, as, query } as Op, variables);
          }
          seen.push(field.name);
        }
      }
    }
    expect(seen).toEqual(expect.arrayContaining(["createUser", "createAccount", "signIn"]));
    console.log("[hostile input] explicit nulls tried:", JSON.stringify([...new Set(seen)]));
  }, 180_000);
});

/** Variables filling every argument, each time with one nullable argument or field set to null. */
function withOneNull(args: readonly GraphQLArgument[]): Record<string, unknown>[] {
  const filled = Object.fromEntries(args.map((a) => [a.name, filler(a.type)]));
  const cases: Record<string, unknown>[] = [];
  for (const arg of args) {
    if (!isNonNullType(arg.type)) cases.push({ ...filled, [arg.name]: null });
    const named = getNamedType(arg.type);
    if (!isInputObjectType(named) || isListType(arg.type)) continue;
    for (const inner of Object.values(named.getFields())) {
      if (isNonNullType(inner.type)) continue;
      const input = filled[arg.name] as Record<string, unknown>;
      cases.push({ ...filled, [arg.name]: { ...input, [inner.name]: null } });
    }
  }
  return cases;
}

/** A plausible value of a type: enough to pass validation and reach the resolver. */
function filler(type: GraphQLInputType): unknown {
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) return [];
  if (isEnumType(inner)) return inner.getValues()[0]!.name;
  if (isInputObjectType(inner)) {
    return Object.fromEntries(
      Object.values(inner.getFields()).map((f) => [f.name, filler(f.type)]),
    );
  }
  return { Int: 900, Float: 1, Boolean: false }[inner.name] ?? "null-check-1";
}
