/**
 * GraphiQL, served by the gateway itself from local npm assets: @graphql-yoga/render-graphiql
 * renders one self-contained page (GraphiQL with its schema explorer, scripts, styles and editor
 * workers inlined), so the IDE works with no internet and loads nothing from a CDN. Apollo's
 * own landing pages load from a CDN, which is why the gateway turns them off and serves this.
 *
 * The page is about 9 MB, 2.4 MB gzipped. It is rendered once, in a worker thread that exits
 * afterwards, into one gzipped Buffer that every response shares: handing Apollo the string made
 * a fresh 9 MB copy per response, held until the client had read it (60 slow readers held
 * 530 MB). A client that does not take gzip gets it unzipped as a stream. It is sent with headers
 * that keep it out of other sites' frames and pin where it may load from and connect to.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { createGunzip } from "node:zlib";
import type { RequestHandler } from "express";

/**
 * Renders and gzips the page in a worker thread. The renderer is a ~9 MB module: imported here,
 * its source and the page string it holds stayed in the gateway's heap for good (39 MB; under
 * `npm run soak` the gateway held 247–282 MB resident before this, 211–248 MB after). The
 * thread's heap goes when it exits.
 */
function renderGzippedPage(options: object): Promise<Buffer> {
  const renderer = createRequire(__filename).resolve("@graphql-yoga/render-graphiql");
  const source = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { gzipSync } = require("node:zlib");
    const { renderGraphiQL } = require(workerData.renderer);
    parentPort.postMessage(gzipSync(renderGraphiQL(workerData.options)));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true, workerData: { renderer, options } });
    worker.once("message", (page: Uint8Array) => resolve(Buffer.from(page)));
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`GraphiQL renderer exited with ${code}`)));
  });
}

/** What a newcomer runs first: who am I, and how to get a session to ask with. */
export const EXAMPLE_TABS = [
  {
    query: `# Who am I, and which MFA devices do I have?
#
# This needs a session. Run SignIn (next tab),
# then put its session.token in the Headers tab:
# {"Authorization": "Bearer <session token>"}
query Me {
  user {
    userName
    arn
    isRoot
  }
  mfaDevices {
    edges {
      node {
        serialNumber
        enableDate
      }
    }
  }
}
`,
  },
  {
    query: `# Root signs in with email; IAM users with
# account (id or alias) and userName. A user
# with an MFA device gets MFA_REQUIRED and a
# challenge to answer with answerMfaChallenge.
mutation SignIn($input: SignInInput!) {
  signIn(input: $input) {
    status
    session {
      token
      expiresAt
    }
    challenge {
      challenge
      expiresAt
    }
  }
}
`,
    variables: JSON.stringify(
      { input: { account: "123456789012", userName: "alice", password: "your password" } },
      null,
      2,
    ),
  },
];

/** Pre-filled in the headers editor, ready for a token from SignIn. */
export const PLACEHOLDER_HEADERS = JSON.stringify(
  { Authorization: "Bearer <session token>" },
  null,
  2,
);

export interface GraphiQLOptions {
  /** Where GraphiQL sends operations, relative to the page. Default "/graphql". */
  endpoint?: string;
  /** Page and header title. Default "Virtual MFA". */
  title?: string;
  /** Tabs opened on a first visit. Default: EXAMPLE_TABS. */
  tabs?: { query: string; variables?: string }[];
  /** JSON text pre-filled in the headers editor. Default: PLACEHOLDER_HEADERS. */
  headers?: string;
}

/**
 * Everything the page needs is inline or its own origin: scripts and styles inline, editor
 * workers from blob: URLs, operations to the gateway itself.
 */
const SECURITY_HEADERS = {
  "content-security-policy": [
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; "),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * Express handler for GET on the GraphQL path: a browser (preferring text/html to JSON) gets
 * the IDE; anything else goes on to the GraphQL endpoint.
 */
export async function createGraphiQLHandler({
  endpoint = "/graphql",
  title = "Virtual MFA",
  tabs = EXAMPLE_TABS,
  headers = PLACEHOLDER_HEADERS,
}: GraphiQLOptions = {}): Promise<RequestHandler> {
  const gzipped = await renderGzippedPage({
    endpoint,
    title,
    defaultTabs: tabs.map((tab) => ({ ...tab, headers })),
    headers,
    // A session token is a credential; keep it out of the browser's storage.
    shouldPersistHeaders: false,
  });
  return (req, res, next) => {
    if (req.accepts(["application/json", "text/html"]) !== "text/html") return next();
    const gzip = req.acceptsEncodings(["gzip", "identity"]) === "gzip";
    res.set({
      ...SECURITY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-cache",
      vary: "accept, accept-encoding",
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    if (gzip) return void res.end(gzipped);
    const gunzip = createGunzip();
    gunzip.pipe(res);
    gunzip.end(gzipped);
  };
}
