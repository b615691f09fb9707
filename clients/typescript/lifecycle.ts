// The admin lifecycle of one API key, then of a scoped admin credential (SPEC B9), through a
// client generated from the served /openapi.json (openapi-typescript's schema.d.ts +
// openapi-fetch): no request here is written by hand.
// Run by scripts/clients.sh, which type-checks this file with `tsc --strict` first.
//   IAM_URL=http://127.0.0.1:8080 IAM_ADMIN_SECRET=… node generated/out/lifecycle.js
// Prints each step; exits 1 on the first answer that differs from what README.md promises.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Problem = components["schemas"]["Problem"];
type AdminVerifyFound = components["schemas"]["AdminVerifyFound"];
type AdminVerifyNotFound = components["schemas"]["AdminVerifyNotFound"];
type EventView = components["schemas"]["EventView"];

const baseUrl = process.env["IAM_URL"];
const secret = process.env["IAM_ADMIN_SECRET"];
if (!baseUrl || !secret) {
  console.error("IAM_URL and IAM_ADMIN_SECRET must be set");
  process.exit(2);
}
// Each run gets its own names, so that runs against one server never meet.
const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const userId = 700_000 + Math.floor(Math.random() * 100_000);
const roleName = `ts-plan-${run}`;

// A client of the service that sends this bearer secret.
const serviceUrl: string = baseUrl;
function clientFor(bearer: string) {
  return createClient<paths>({
    baseUrl: serviceUrl,
    headers: { Authorization: `Bearer ${bearer}` },
    signal: AbortSignal.timeout(30_000),
  });
}

const client = clientFor(secret);

class Mismatch extends Error {}

function check(ok: boolean, what: string, seen?: unknown): asserts ok {
  if (!ok) throw new Mismatch(`${what}${seen === undefined ? "" : `: got ${JSON.stringify(seen)}`}`);
}

// The typed Problem of an error answer with this status and code, else a mismatch.
function refused(
  label: string,
  r: { data?: unknown; error?: Problem; response: Response },
  status: number,
  code: string,
): Problem {
  check(r.data === undefined && r.error !== undefined, `${label}: refused with a Problem`, {
    status: r.response.status,
    data: r.data,
  });
  const problem: Problem = r.error;
  check(r.response.status === status && problem.status === status, `${label}: HTTP ${status}`, {
    status: r.response.status,
    problem,
  });
  check(
    (r.response.headers.get("content-type") ?? "").startsWith("application/problem+json"),
    `${label}: problem+json content type`,
    r.response.headers.get("content-type"),
  );
  check(problem.code === code, `${label}: problem code`, problem);
  check(problem.type === `urn:iam-tokens:problem:${code}`, `${label}: problem type`, problem.type);
  return problem;
}

function step(name: string, detail: unknown): void {
  console.log(`[ts] ${name.padEnd(22)} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
}

// Fails on an error answer, and narrows to the success body.
function ok<T>(label: string, r: { data?: T; error?: Problem | unknown; response: Response }, status: number): T {
  check(r.response.status === status, `${label}: expected HTTP ${status}`, {
    status: r.response.status,
    body: r.error,
  });
  check(r.data !== undefined, `${label}: no parsed body`);
  return r.data;
}

async function main(): Promise<void> {
  // 1. A role.
  const role = ok(
    "create role",
    await client.POST("/api/admin/roles", {
      body: { name: roleName, description: "lifecycle plan", permissions: ["projects.*", "billing.read"] },
    }),
    201,
  );
  check(role.name === roleName, "role name", role.name);
  check(
    JSON.stringify(role.permissions) === JSON.stringify(["billing.read", "projects.*"]),
    "role permissions (sorted)",
    role.permissions,
  );
  check(role.tokens === 0, "a new role is held by no token", role.tokens);
  step("create role", { name: role.name, permissions: role.permissions });

  // 2. A token holding it, with metadata, a limit and credits.
  const created = ok(
    "create token",
    await client.POST("/api/admin/tokens", {
      body: {
        userId,
        name: `ts lifecycle ${run}`,
        privilege: "full",
        roles: [roleName],
        metadata: { plan: "pro" },
        ratelimits: [{ name: "requests", limit: 100, duration: 60_000 }],
        credits: { remaining: 50 },
      },
    }),
    201,
  );
  const token = created.token;
  check(created.rawApiKey.length > 0, "raw key shown once", created.rawApiKey);
  check(token.userId === userId, "owner", token.userId);
  check(token.valid, "new token valid", token.valid);
  check(JSON.stringify(token.roles) === JSON.stringify([roleName]), "roles", token.roles);
  check(token.metadata["plan"] === "pro", "metadata.plan", token.metadata);
  check(token.credits?.remaining === 50, "credits at creation", token.credits);
  step("create token", { id: token.id, prefix: token.prefix, credits: token.credits?.remaining });

  // A second key of the same owner on another plan: the metadata filter must leave it out.
  const other = ok(
    "create 2nd token",
    await client.POST("/api/admin/tokens", {
      body: { userId, name: `ts lifecycle other ${run}`, privilege: "full", metadata: { plan: "free" } },
    }),
    201,
  );
  step("create 2nd token", { id: other.token.id, metadata: other.token.metadata });

  // 3. Admin verify: a query the role satisfies, at cost 2.
  const verified = ok(
    "admin verify",
    await client.POST("/api/admin/verify", {
      body: { key: created.rawApiKey, permissions: "projects.write AND billing.read", cost: 2 },
    }),
    200,
  );
  // AdminVerifyView is AdminVerifyNotFound | AdminVerifyFound; only the latter can be valid
  // (AdminVerifyNotFound.valid is the literal false), so checking `valid` narrows to it.
  check(verified.valid && verified.code === "VALID", "verify VALID", verified);
  const found: AdminVerifyFound = verified;
  check(found.id === token.id, "verified token id", found.id);
  check(found.credits?.token === 48, "credits left after cost 2", found.credits);
  const requests = found.ratelimits?.find((l) => l.name === "requests");
  check(requests?.remaining === 98 && requests.scope === "token", "requests limit after cost 2", found.ratelimits);
  check(found.metadata["plan"] === "pro", "metadata at verification", found.metadata);
  step("admin verify", { code: found.code, credits: found.credits, requestsLeft: requests.remaining });

  // 4. Read it back.
  const read = ok(
    "read token",
    await client.GET("/api/admin/tokens/{id}", { params: { path: { id: token.id } } }),
    200,
  );
  check(read.id === token.id && read.valid, "read token", read);
  check(read.credits?.remaining === 48, "credits read after verify", read.credits);
  check(
    JSON.stringify(read.effectivePermissions) === JSON.stringify(["billing.read", "projects.*"]),
    "effective permissions",
    read.effectivePermissions,
  );
  const limit = read.ratelimits?.[0];
  check(limit?.name === "requests" && limit.limit === 100 && limit.autoApply === true, "configured limit", read.ratelimits);
  step("read token", { id: read.id, credits: read.credits?.remaining, roles: read.roles });

  // 5. Top up the credits.
  const topped = ok(
    "patch credits",
    await client.PATCH("/api/admin/tokens/{id}/credits", {
      params: { path: { id: token.id } },
      body: { increment: 5 },
    }),
    200,
  );
  check(topped.credits?.remaining === 53, "credits after +5", topped.credits);
  step("patch credits", { remaining: topped.credits.remaining });

  // 6. The owner's tokens with metadata plan=pro: the declared deepObject parameter `meta`, which
  // openapi-fetch's default querySerializer sends as meta[plan]=pro.
  const listed = await client.GET("/api/admin/users/{user_id}/tokens", {
    params: { path: { user_id: userId }, query: { status: "valid", limit: 50, meta: { plan: "pro" } } },
  });
  const sent = new URL(listed.response.url);
  check(
    JSON.stringify([...sent.searchParams].sort()) ===
      JSON.stringify([["limit", "50"], ["meta[plan]", "pro"], ["status", "valid"]]),
    "the filter sent as meta[plan]=pro",
    listed.response.url,
  );
  const page = ok("list tokens", listed, 200);
  check(
    page.tokens.length === 1 && page.tokens[0]?.id === token.id,
    "only the pro token listed",
    page.tokens.map((t) => ({ id: t.id, metadata: t.metadata })),
  );
  check(page.nextCursor === null || page.nextCursor === undefined, "one page", page.nextCursor);
  step("list meta[plan]=pro", {
    query: sent.search,
    ids: page.tokens.map((t) => t.id),
    nextCursor: page.nextCursor ?? null,
  });

  // 7. Revoke (admin route), then the key verifies as NOT_FOUND.
  const revoked = ok(
    "revoke",
    await client.POST("/api/admin/tokens/{id}/revoke", { params: { path: { id: token.id } } }),
    200,
  );
  check(revoked.revoked === true && revoked.token.valid === false, "revoked", revoked);
  step("revoke", { revoked: revoked.revoked, valid: revoked.token.valid });

  const after = ok(
    "verify revoked",
    await client.POST("/api/admin/verify", { body: { key: created.rawApiKey } }),
    200,
  );
  // The other branch of the union: no `id` narrows to AdminVerifyNotFound.
  check(!("id" in after), "revoked key: AdminVerifyNotFound", after);
  const notFound: AdminVerifyNotFound = after;
  check(notFound.valid === false && notFound.code === "NOT_FOUND", "revoked key NOT_FOUND", notFound);
  check(
    JSON.stringify(Object.keys(notFound).sort()) === JSON.stringify(["code", "valid"]),
    "NOT_FOUND carries nothing else",
    notFound,
  );
  step("verify revoked", { valid: notFound.valid, code: notFound.code });

  // 8. An invalid role name: a typed 422 problem.
  const bad = await client.POST("/api/admin/roles", { body: { name: "not a role name!", permissions: [] } });
  check(bad.data === undefined && bad.error !== undefined, "invalid role refused", bad.data);
  const problem: Problem = bad.error;
  check(bad.response.status === 422 && problem.status === 422, "422", { status: bad.response.status, problem });
  check(
    (bad.response.headers.get("content-type") ?? "").startsWith("application/problem+json"),
    "problem+json content type",
    bad.response.headers.get("content-type"),
  );
  check(problem.code === "invalid_role" && problem.field === "name", "problem code and field", problem);
  check(problem.type === "urn:iam-tokens:problem:invalid_role", "problem type", problem.type);
  step("invalid role -> 422", { code: problem.code, field: problem.field, detail: problem.detail });

  // 9. A scoped credential (SPEC B9), created with the configured admin secret: a verifier.
  const cred = ok(
    "create credential",
    await client.POST("/api/admin/credentials", { body: { name: `ts-verifier-${run}`, preset: "verifier" } }),
    201,
  );
  check(
    JSON.stringify(cred.effectiveScopes) === JSON.stringify(["tokens.verify"]),
    "verifier effective scopes",
    cred.effectiveScopes,
  );
  check(cred.active && cred.secret.startsWith("iam_admin_"), "an active credential and its secret", cred.active);
  step("create credential", { id: cred.id, effectiveScopes: cred.effectiveScopes });
  const verifier = clientFor(cred.secret);

  // 10. The verifier verifies the 2nd token (still valid: only the first was revoked).
  const byVerifier = ok(
    "verifier verify",
    await verifier.POST("/api/admin/verify", { body: { key: other.rawApiKey } }),
    200,
  );
  check(byVerifier.valid && byVerifier.code === "VALID", "verifier: verify VALID", byVerifier);
  const foundByVerifier: AdminVerifyFound = byVerifier;
  check(foundByVerifier.id === other.token.id, "verifier: verified token id", foundByVerifier.id);
  step("verifier verify", { id: foundByVerifier.id, code: foundByVerifier.code });

  // 11. It may not create a token: a typed 403 naming the scope it lacks.
  const forbidden = refused(
    "verifier create token",
    await verifier.POST("/api/admin/tokens", { body: { userId, name: `ts verifier ${run}`, privilege: "full" } }),
    403,
    "forbidden",
  );
  check(forbidden.missingScope === "tokens.create", "missingScope", forbidden);
  step("verifier create -> 403", { code: forbidden.code, missingScope: forbidden.missingScope });

  // 12. The audit log: nothing done by the verifier (it changed nothing); its creation, by the
  // configured admin (actor type config).
  const actor = `credential:${cred.id}`;
  const acted = ok(
    "audit by verifier",
    await client.GET("/api/admin/audit", { params: { query: { actor, limit: 200 } } }),
    200,
  );
  const kinds = acted.events.map((e) => e.kind);
  check(kinds.length === 0, `no event with actor ${actor}`, kinds);
  step("audit by verifier", { actor, kinds });

  let createdEvent: EventView | undefined;
  let cursor: number | undefined;
  for (;;) {
    const pageOfKind = ok(
      "audit credential_created",
      await client.GET("/api/admin/audit", {
        params: { query: { kind: "credential_created", limit: 200, ...(cursor === undefined ? {} : { cursor }) } },
      }),
      200,
    );
    check(
      pageOfKind.events.every((e) => e.kind === "credential_created"),
      "only credential_created events",
      pageOfKind.events.map((e) => e.kind),
    );
    createdEvent = pageOfKind.events.find((e) => e.detail["credentialId"] === cred.id);
    if (createdEvent !== undefined || pageOfKind.nextCursor === null || pageOfKind.nextCursor === undefined) break;
    cursor = pageOfKind.nextCursor;
  }
  check(createdEvent !== undefined, `a credential_created event with detail.credentialId ${cred.id}`);
  check(createdEvent.actor.type === "config", "created by the configured admin", createdEvent.actor);
  step("audit cred created", { eventId: createdEvent.id, actor: createdEvent.actor, detail: createdEvent.detail });

  // 13. Revoke it: it stays readable, revoked; the verifier's secret is refused at once (401).
  const gone = ok(
    "revoke credential",
    await client.DELETE("/api/admin/credentials/{id}", { params: { path: { id: cred.id } } }),
    200,
  );
  check(gone.id === cred.id, "revoked credential id", gone.id);
  check(typeof gone.revokedAt === "string" && gone.active === false, "revokedAt set, not active", gone);
  step("revoke credential", { id: gone.id, revokedAt: gone.revokedAt, active: gone.active });

  const unauthorized = refused(
    "revoked verifier",
    await verifier.POST("/api/admin/verify", { body: { key: other.rawApiKey } }),
    401,
    "unauthorized",
  );
  step("revoked cred -> 401", { code: unauthorized.code, detail: unauthorized.detail });
}

main().then(
  () => console.log("[ts] lifecycle OK"),
  (e: unknown) => {
    console.error(`[ts] MISMATCH: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
