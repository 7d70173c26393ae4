/**
 * GraphiQL, served by the gateway itself from local npm assets: @graphql-yoga/render-graphiql
 * renders one self-contained page (GraphiQL with its schema explorer, scripts, styles and editor
 * workers inlined), so the IDE works with no internet and loads nothing from a CDN. Apollo's
 * own landing pages load from a CDN, which is why this plugin replaces them.
 */
import type { ApolloServerPlugin } from "@apollo/server";

/**
 * Loaded on first use, not at import: the renderer is a ~9 MB module whose parsed source costs
 * the gateway ~60 MB of resident memory even when the IDE is off (as in production), because
 * server.ts imports this file either way. Measured in README "Benchmarks".
 */
const loadRenderer = async () => (await import("@graphql-yoga/render-graphiql")).renderGraphiQL;

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
 * Apollo landing-page plugin: a browser's GET on the GraphQL path with `Accept: text/html`
 * gets the IDE. The page (about 9 MB) is rendered once, when the server starts.
 */
export function useGraphiQL({
  endpoint = "/graphql",
  title = "Virtual MFA",
  tabs = EXAMPLE_TABS,
  headers = PLACEHOLDER_HEADERS,
}: GraphiQLOptions = {}): ApolloServerPlugin {
  return {
    async serverWillStart() {
      const renderGraphiQL = await loadRenderer();
      const html = renderGraphiQL({
        endpoint,
        title,
        defaultTabs: tabs.map((tab) => ({ ...tab, headers })),
        headers,
        // A session token is a credential; keep it out of the browser's storage.
        shouldPersistHeaders: false,
      });
      return {
        async renderLandingPage() {
          return { html };
        },
      };
    },
  };
}
