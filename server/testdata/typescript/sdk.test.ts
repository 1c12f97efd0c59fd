// The TypeScript SDK (gen/typescript) against a live server, as a user would
// write it: typed requests, typed data, typed problem documents. tsc checks
// the types (strict; the @ts-expect-error lines prove that wrong calls do not
// compile), node --test runs it. CRM_URL is the server's base URL.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createCrmClient, signIn, signOut, type CrmClient, type Problem, type Schema } from "@opencrm/crm-sdk";

const baseUrl = process.env.CRM_URL;
if (!baseUrl) {
  throw new Error("CRM_URL is not set: run this through `go test ./server -run TestTypeScriptSDK`");
}

const admin = { name: "Ada Lovelace", email: "ada@example.com", password: "correct horse battery staple" };

test("bootstrap, sign in, create and list customers, and a typed problem on a duplicate", async (t) => {
  const crm: CrmClient = createCrmClient({ baseUrl });

  await t.test("without a token, a protected operation answers 401 with a problem", async () => {
    const { data, error, response } = await crm.GET("/customers");
    assert.equal(response.status, 401);
    assert.equal(data, undefined);
    const problem: Problem | undefined = error;
    assert.equal(problem?.status, 401);
    assert.match(response.headers.get("WWW-Authenticate") ?? "", /^Bearer/);
  });

  await t.test("the first user is created without a token and becomes an admin", async () => {
    const { data, error, response } = await crm.POST("/users", { body: admin });
    assert.equal(error, undefined, JSON.stringify(error));
    assert.equal(response.status, 201);
    const user: Schema<"User"> = data!;
    assert.equal(user.role, "admin");
    assert.equal(user.email, admin.email);
    assert.equal(response.headers.get("Location"), `/users/${user.id}`);
  });

  await t.test("sign in sets the bearer token", async () => {
    const { data, error } = await signIn(crm, admin.email, admin.password);
    assert.equal(error, undefined, JSON.stringify(error));
    assert.equal(data?.token_type, "Bearer");
    assert.ok((data?.expires_in ?? 0) > 0);
    const me = await crm.GET("/users/me");
    assert.equal(me.response.status, 200);
    assert.equal(me.data?.email, admin.email);
  });

  const created: Schema<"Customer">[] = [];
  await t.test("create customers", async () => {
    for (const body of [
      { name: "Grace Hopper", email: "grace@example.com", company: "Compilers Inc", tags: ["vip"] },
      { name: "Alan Turing", email: "alan@example.com", status: "inactive" as const },
    ] satisfies Schema<"CustomerCreate">[]) {
      const { data, error, response } = await crm.POST("/customers", { body });
      assert.equal(error, undefined, JSON.stringify(error));
      assert.equal(response.status, 201);
      assert.ok(response.headers.get("ETag"));
      created.push(data!);
    }
    assert.deepEqual(created[0]?.tags, ["vip"]);
    assert.equal(created[1]?.status, "inactive");
  });

  await t.test("list customers, sorted and filtered", async () => {
    const all = await crm.GET("/customers", { params: { query: { sort: "name", include_total: true } } });
    assert.equal(all.response.status, 200);
    assert.deepEqual(all.data?.data.map((c) => c.name), ["Alan Turing", "Grace Hopper"]);
    assert.equal(all.data?.total, 2);
    assert.equal(all.data?.next_cursor, null);

    const vip = await crm.GET("/customers", { params: { query: { tag: ["vip"], limit: 1 } } });
    assert.deepEqual(vip.data?.data.map((c) => c.email), ["grace@example.com"]);

    // A filter given several values matches any of them (sent as tag=vip&tag=…).
    const either = await crm.GET("/customers", { params: { query: { tag: ["nobody", "vip"], status: "active" } } });
    assert.equal(either.response.status, 200);
    assert.deepEqual(either.data?.data.map((c) => c.email), ["grace@example.com"]);

    const byEmail = await crm.GET("/customers", { params: { query: { email: "Alan@Example.com" } } });
    assert.deepEqual(byEmail.data?.data.map((c) => c.name), ["Alan Turing"]);

    const one = await crm.GET("/customers/{id}", { params: { path: { id: created[0]!.id } } });
    assert.equal(one.data?.name, "Grace Hopper");
  });

  await t.test("a duplicate email answers 409 with a typed problem", async () => {
    const { data, error, response } = await crm.POST("/customers", {
      body: { name: "Grace again", email: "GRACE@example.com" },
    });
    assert.equal(data, undefined);
    assert.equal(response.status, 409);
    assert.equal(response.headers.get("Content-Type"), "application/problem+json");
    assert.ok(error);
    const problem: Problem = error;
    assert.equal(problem.type, "urn:crm:problem:duplicate");
    assert.equal(problem.status, 409);
    assert.ok(problem.request_id);
    assert.deepEqual(problem.errors?.map((e) => e.pointer), ["/email"]);
  });

  await t.test("refreshes asked for at once share one request, and the sign-in goes on", async () => {
    const [first, second] = await Promise.all([crm.refresh(), crm.refresh()]);
    assert.equal(first.response.status, 200, JSON.stringify(first.error));
    assert.equal(first, second);
    const me = await crm.GET("/users/me");
    assert.equal(me.response.status, 200);
    const again = await crm.refresh();
    assert.equal(again.response.status, 200, JSON.stringify(again.error));
    assert.notEqual(again.data?.refresh_token, first.data?.refresh_token);
    assert.notEqual(again.data?.access_token, first.data?.access_token);
    assert.equal((await crm.GET("/users/me")).response.status, 200);
  });

  await t.test("an empty id is refused before it is sent, as it would name the list", async () => {
    // "/customers/" is the list: without the check, this GET would answer 200
    // with a list typed as a Customer.
    await assert.rejects(crm.GET("/customers/{id}", { params: { path: { id: "" } } }), {
      name: "TypeError",
      message: 'GET /customers/{id}: the path parameter "id" is empty',
    });
    await assert.rejects(crm.DELETE("/interactions/{id}", { params: { path: { id: "" } } }), TypeError);
    // fetch resolves "." and "..": "/users/." is "/users/", the list.
    for (const id of [".", ".."]) {
      await assert.rejects(crm.GET("/users/{id}", { params: { path: { id } } }), {
        name: "TypeError",
        message: `GET /users/{id}: the path parameter "id" is "${id}"`,
      });
    }
  });

  await t.test("sign out revokes the refresh token and forgets both tokens", async () => {
    const other = createCrmClient({ baseUrl });
    await assert.rejects(other.refresh(), /no refresh token/);
    const login = await signIn(other, admin.email, admin.password);
    const kept = other.getRefreshToken();
    assert.equal(kept, login.data?.refresh_token);
    const out = await signOut(other);
    assert.equal(out?.response.status, 204, JSON.stringify(out?.error));
    assert.equal(other.getRefreshToken(), undefined);
    assert.equal((await other.GET("/users/me")).response.status, 401);
    // Revoked on the server, not only forgotten here.
    other.setRefreshToken(kept);
    assert.equal((await other.refresh()).response.status, 401);
  });

  await t.test("an invalid query parameter answers 400 naming it", async () => {
    const { error, response } = await crm.GET("/customers", { params: { query: { limit: 500 } } });
    assert.equal(response.status, 400);
    assert.ok(error?.errors?.some((e) => e.parameter === "limit"), JSON.stringify(error));
  });
});

// Never called: these lines only have to compile, or not. They prove that the
// SDK's types come from the spec and reject what the server would.
export function typeChecks(crm: CrmClient): void {
  // @ts-expect-error: CustomerCreate has no "nickname" (openapi-fetch infers
  // the init object, so only a typed body gets TypeScript's excess-property check)
  const body: Schema<"CustomerCreate"> = { name: "x", email: "x@example.com", nickname: "y" };
  void crm.POST("/customers", { body });
  // @ts-expect-error: "email" is required
  void crm.POST("/customers", { body: { name: "x" } });
  // @ts-expect-error: status is "active" or "inactive"
  void crm.POST("/customers", { body: { name: "x", email: "x@example.com", status: "archived" } });
  // @ts-expect-error: there is no such path
  void crm.GET("/clients");
  // @ts-expect-error: ids are strings
  void crm.GET("/customers/{id}", { params: { path: { id: 42 } } });
  // @ts-expect-error: sort takes only the spec's values
  void crm.GET("/customers", { params: { query: { sort: "email" } } });
  const id: Schema<"Customer">["id"] = "6553f1a2c8e4b2a1d0f00002";
  // @ts-expect-error: a Customer's tags are strings
  const tags: number[] = ({} as Schema<"Customer">).tags;
  void id;
  void tags;
}
