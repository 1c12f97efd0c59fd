// Generates the Postman collection (gen/postman/) from openapi.yaml:
//
//   node gen/tools/postman.mjs openapi.yaml gen/postman     (what `make postman` runs)
//
// Postman's own converter (openapi-to-postmanv2, the one behind Postman's
// "Import") turns the spec into requests whose bodies, parameters and saved
// responses are the spec's examples. This script then makes the collection
// runnable from top to bottom, in Postman's Runner or with newman, against a
// fresh server:
//
//   - authentication through collection variables: "Sign in" stores the access
//     and refresh tokens, and every request that needs a token inherits the
//     collection's bearer auth ({{accessToken}}); the others send none;
//   - a first request that creates the first admin ({{adminEmail}},
//     {{adminPassword}}) on a server that has no user yet;
//   - the example emails get a suffix unique to the moment they are sent, so
//     that the run does not collide with records made from the same examples;
//   - ids flow between requests: the spec's example ids (…0001 a user, …0002 a
//     customer, …0003 an interaction) become {{userId}}, {{customerId}} and
//     {{interactionId}}, which the create requests store;
//   - the requests run in an order that works (create, read, change, then
//     delete), and each one tests that its status is one that openapi.yaml
//     lists for the operation, and the one this run expects.
//
// The output depends only on the spec and the pinned converter (ids are derived
// from names, not random), so a test can regenerate it and fail when the
// committed copy is stale.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import converter from "openapi-to-postmanv2";
import yaml from "js-yaml";

const [specPath, outDir] = process.argv.slice(2);
if (!specPath || !outDir) {
  console.error("usage: node gen/tools/postman.mjs <openapi.yaml> <output directory>");
  process.exit(2);
}

// The run: folders in order, each with the operations it runs, in order. Every
// operation of the spec appears once (createUser twice: the bootstrap and an
// ordinary create). `body` replaces the example body; `save` stores members of
// the response in collection variables; `expect` is the status this run wants
// (default: the operation's first 2xx); `needs` names the variables without
// which the request is not sent, each with what to do.
const plan = [
  {
    folder: "Start here",
    description:
      "Set `adminPassword` first (8 to 256 characters): the collection ships without one. Creates the first admin on a server that has no user yet, then signs in and stores the tokens in the collection variables `accessToken` and `refreshToken`. Every other request sends `Authorization: Bearer {{accessToken}}`. On a server that already has users, set `adminEmail` and `adminPassword` to your own account: the first request then answers 401 and \"Sign in\" uses your account.",
    items: [
      {
        op: "createUser",
        name: "Create the first admin (bootstrap)",
        description:
          "Creates the first user, who becomes an `admin`, with `adminName`, `adminEmail` and `adminPassword`. Only possible while the server has no user (201); afterwards it answers 401, which this run accepts.",
        auth: "noauth",
        body: { name: "{{adminName}}", email: "{{adminEmail}}", password: "{{adminPassword}}" },
        expect: [201, 401],
        save: { adminId: "id" },
        needs: { adminPassword: "set it (8 to 256 characters) in the environment or the collection's variables, and run again" },
      },
      {
        op: "loginUser",
        body: { email: "{{adminEmail}}", password: "{{adminPassword}}" },
        needs: { adminPassword: "set it (8 to 256 characters) in the environment or the collection's variables, and run again" },
        save: { accessToken: "access_token", refreshToken: "refresh_token", adminId: "user.id" },
      },
    ],
  },
  {
    folder: "Auth",
    description: "Token rotation. Signing out is the last request of the run (\"Clean up\").",
    items: [
      {
        op: "refreshToken",
        body: { refresh_token: "{{refreshToken}}" },
        needs: { refreshToken: "sign in first: run Start here" },
        save: { accessToken: "access_token", refreshToken: "refresh_token" },
      },
      {
        op: "requestToken",
        form: { grant_type: "refresh_token", refresh_token: "{{refreshToken}}" },
        needs: { refreshToken: "sign in first: run Start here" },
        save: { accessToken: "access_token", refreshToken: "refresh_token" },
      },
    ],
  },
  {
    folder: "Users",
    items: [
      { op: "createUser", save: { userId: "id" } },
      { op: "listUsers" },
      { op: "getCurrentUser" },
      { op: "getUser" },
      { op: "replaceUser" },
      { op: "updateUser" },
    ],
  },
  {
    folder: "Customers",
    items: [
      { op: "createCustomer", save: { customerId: "id" } },
      { op: "listCustomers" },
      { op: "getCustomer" },
      { op: "replaceCustomer" },
      { op: "updateCustomer" },
      { op: "listCustomerInteractions" },
    ],
  },
  {
    folder: "Interactions",
    items: [
      { op: "createInteraction", save: { interactionId: "id" } },
      { op: "listInteractions" },
      { op: "getInteraction" },
      { op: "replaceInteraction" },
      { op: "updateInteraction" },
      { op: "listInteractionsByCustomerLegacy" },
    ],
  },
  {
    folder: "Sync",
    items: [{ op: "listDeletions" }],
  },
  {
    folder: "Operations",
    items: [{ op: "getHealth" }, { op: "getReadiness" }],
  },
  {
    folder: "Clean up",
    description:
      "Deletes what the run created, in an order that leaves nothing referenced, then revokes the refresh token.",
    items: [
      { op: "deleteInteraction" },
      { op: "deleteCustomer" },
      { op: "deleteUser" },
      { op: "logout", body: { refresh_token: "{{refreshToken}}" }, needs: { refreshToken: "sign in first: run Start here" } },
    ],
  },
];

// Headers whose value a run can supply: turned on, they send it.
// (If-Match and If-None-Match send the ETag last seen of the record the
// request names: see recordKind.)
const headerValues = {
  "idempotency-key": "{{$guid}}",
};

// recordKind is "user", "customer" or "interaction" for the operations on
// one record of that kind, whose id is in {{<kind>Id}} and whose last ETag
// the run keeps in {{<kind>Etag}}; "me" for the signed-in user's record;
// undefined for the others.
function recordKind(path) {
  return path === "/users/me" ? "me" : path.match(/^\/(user|customer|interaction)s(\/\{id\})?$/)?.[1];
}

// The spec's example ids, and the variables that hold the real ones.
const exampleIds = {
  "6553f1a2c8e4b2a1d0f00001": "{{userId}}",
  "6553f1a2c8e4b2a1d0f00002": "{{customerId}}",
  "6553f1a2c8e4b2a1d0f00003": "{{interactionId}}",
};

const variables = [
  ["baseUrl", "http://localhost:8080", "Where the API is."],
  ["adminName", "Admin", "Name of the first admin that \"Create the first admin\" creates."],
  ["adminEmail", "admin@example.com", "The account that \"Sign in\" uses (and that the bootstrap creates on a new server)."],
  ["adminPassword", "", "Its password: set it before a run (8 to 256 characters). None ships, so that a run on a new server never makes an admin whose password is published."],
  ["userEtag", "", "The `ETag` of the user in `userId`, as last answered: turn on `If-Match` or `If-None-Match` to send it."],
  ["customerEtag", "", "The `ETag` of the customer in `customerId`, as last answered."],
  ["interactionEtag", "", "The `ETag` of the interaction in `interactionId`, as last answered."],
  ["meEtag", "", "The `ETag` of the signed-in user, as `GET /users/me` last answered."],
  ["accessToken", "", "Set by \"Sign in\" and \"Exchange a refresh token\"; sent as the bearer token."],
  ["refreshToken", "", "Set by \"Sign in\" and \"Exchange a refresh token\"."],
  ["adminId", "", "Set by \"Sign in\": the signed-in user's id."],
  ["userId", "", "Set by \"Create a user\"."],
  ["customerId", "", "Set by \"Create a customer\"."],
  ["interactionId", "", "Set by \"Record an interaction\"."],
];

const spec = yaml.load(readFileSync(specPath, "utf8"));

// guard runs before every request, and skips, failing a test that says why,
// one that cannot do what it means to: a request that needs a token before
// "Sign in" set one (without a token, "Create a user" would create the
// server's first admin, with a password nobody knows), one whose path
// variable is empty ("/customers/:id" with an empty id is "/customers/",
// which the server reads as the list of customers), or a write with
// If-Match turned on before the record's ETag is known.
const guard = [
  `// Generated by gen/tools/postman.mjs.`,
  `let missing;`,
  `for (const v of pm.request.url.variables.all()) {`,
  `    const value = pm.variables.replaceIn(String(v.value ?? ""));`,
  `    if (value === "" || value.includes("{{")) {`,
  `        missing = ["path variable :" + v.key + " is set", ":" + v.key + " is empty: run the request that sets it first, or set it by hand"];`,
  `    }`,
  `}`,
  `if (!missing && !(pm.request.auth && pm.request.auth.type === "noauth") && !pm.variables.get("accessToken")) {`,
  `    missing = ["accessToken is set", "sign in first: run Start here, with adminEmail and adminPassword set"];`,
  `}`,
  `// An ETag not known yet: a GET goes without the condition; a write would not be the one meant.`,
  `if (pm.request.headers.has("If-None-Match") && pm.variables.replaceIn(pm.request.headers.get("If-None-Match")) === "") {`,
  `    pm.request.headers.remove("If-None-Match");`,
  `}`,
  `if (!missing && pm.request.headers.has("If-Match") && pm.variables.replaceIn(pm.request.headers.get("If-Match")) === "") {`,
  `    missing = ["the ETag for If-Match is known", "read the record first (its GET), or turn If-Match off"];`,
  `}`,
  `if (missing) {`,
  `    pm.test(missing[0], function () {`,
  `        throw new Error(missing[1]);`,
  `    });`,
  `    pm.execution.skipRequest();`,
  `}`,
];

// The spec's operations by operationId, and by "METHOD /postman/:path".
const operations = new Map();
const byRoute = new Map();
for (const [path, item] of Object.entries(spec.paths)) {
  for (const method of ["get", "put", "post", "delete", "patch", "head", "options", "trace"]) {
    const op = item[method];
    if (!op) continue;
    const statuses = Object.keys(op.responses).map(Number).sort((a, b) => a - b);
    const info = {
      id: op.operationId,
      method: method.toUpperCase(),
      path,
      statuses,
      success: statuses.find((s) => s >= 200 && s < 300),
      security: op.security ?? spec.security ?? [],
    };
    operations.set(op.operationId, info);
    byRoute.set(`${info.method} ${path.replace(/\{([^}]+)\}/g, ":$1")}`, info);
  }
}

const planned = new Set(plan.flatMap((f) => f.items.map((i) => i.op)));
for (const id of operations.keys()) {
  if (!planned.has(id)) fail(`operation ${id} is not in the run plan of gen/tools/postman.mjs: add it where it can run`);
}
for (const id of planned) {
  if (!operations.has(id)) fail(`the run plan of gen/tools/postman.mjs names ${id}, which openapi.yaml does not have`);
}

const { output } = await convert(readFileSync(specPath, "utf8"));
const converted = output[0].data;

// The converter's requests by operation.
const requests = new Map();
(function collect(items) {
  for (const item of items) {
    if (item.item) {
      collect(item.item);
      continue;
    }
    const route = `${item.request.method} /${item.request.url.path.join("/")}`;
    const info = byRoute.get(route);
    if (!info) fail(`the converter made a request for ${route}, which matches no operation`);
    requests.set(info.id, item);
  }
})(converted.item);

const tagDescriptions = Object.fromEntries((spec.tags ?? []).map((t) => [t.name, t.description]));
const folders = plan.map((f) => ({
  id: uuid(`folder ${f.folder}`),
  name: f.folder,
  description: f.description ?? tagDescriptions[f.folder],
  item: f.items.map((step) => request(step)),
}));

const collection = {
  info: {
    _postman_id: uuid(`collection ${spec.info.title}`),
    name: spec.info.title,
    description: {
      content:
        `Generated from openapi.yaml by \`make postman\` (openapi-to-postmanv2 and gen/tools/postman.mjs); do not edit by hand.\n\n` +
        `**Run it**: set \`baseUrl\` and \`adminPassword\` (none ships; on a server that already has users, \`adminEmail\` and \`adminPassword\` of your account) in the collection variables or an environment, then run the collection from the top: it signs in, stores the token in \`accessToken\`, and every request sends it as a bearer token. Ids flow between requests through \`userId\`, \`customerId\` and \`interactionId\`, and each record's last \`ETag\` through \`userEtag\`, \`customerEtag\` and \`interactionEtag\`. Each request checks that its status is one that openapi.yaml lists for it. A request that needs a token before one is set, or whose id is not set yet, is not sent: a failed test says what to do.\n\n` +
        converted.info.description.content,
      type: "text/markdown",
    },
    schema: converted.info.schema,
  },
  auth: { type: "bearer", bearer: [{ key: "token", value: "{{accessToken}}", type: "string" }] },
  event: [{ listen: "prerequest", script: { id: uuid("collection prerequest"), type: "text/javascript", exec: guard } }],
  variable: variables.map(([key, value, description]) => ({ key, value, type: "string", description })),
  item: folders,
};

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "crm.postman_collection.json"), JSON.stringify(collection, null, 2) + "\n");
const environment = {
  id: uuid(`environment ${spec.info.title}`),
  name: `${spec.info.title} (local)`,
  values: variables
    .filter(([key]) => ["baseUrl", "adminEmail", "adminPassword"].includes(key))
    .map(([key, value]) => ({ key, value, type: key === "adminPassword" ? "secret" : "default", enabled: true })),
  _postman_variable_scope: "environment",
};
writeFileSync(join(outDir, "crm.postman_environment.json"), JSON.stringify(environment, null, 2) + "\n");
console.log(`Postman collection for ${spec.info.title} ${spec.info.version} written to ${outDir}`);

// request turns one step of the plan into a collection item.
function request(step) {
  const info = operations.get(step.op);
  const source = requests.get(step.op);
  if (!source) fail(`the converter made no request for ${step.op}`);
  const item = structuredClone(source);
  const name = step.name ?? item.name;
  item.id = uuid(`request ${step.op} ${name}`);
  item.name = name;
  item.request.name = name;
  if (step.description) {
    item.request.description = { content: step.description, type: "text/markdown" };
  }

  // Authentication: the collection's bearer token, or none for operations
  // that take none.
  const anonymous = step.auth === "noauth" || info.security.length === 0;
  if (anonymous) {
    item.request.auth = { type: "noauth" };
  } else {
    delete item.request.auth;
  }

  // Parameters without an example get a random value from the converter;
  // give them a stable placeholder instead (optional ones are off anyway).
  for (const req of [item.request, ...(item.response ?? []).map((r) => r.originalRequest)]) {
    // A parameter that takes several values (repeated: status=Open&status=InProgress)
    // comes twice from the converter; once is the example, repeated by hand.
    if (req?.url?.query) req.url.query = req.url.query.filter((q, i, all) => all.findIndex((o) => o.key === q.key) === i);
    for (const q of req?.url?.query ?? []) q.value = paramValue(info, "query", q.key);
    for (const h of req?.header ?? []) {
      if (isParam(info, "header", h.key)) h.value = paramValue(info, "header", h.key);
    }
  }

  // Ids: the example ids become the variables that hold real ones.
  for (const v of item.request.url.variable ?? []) v.value = replaceIds(v.value);
  for (const q of item.request.url.query ?? []) q.value = replaceIds(q.value);
  if (item.request.body?.mode === "raw") {
    item.request.body.raw = step.body
      ? JSON.stringify(step.body, null, 2)
      : randomPasswords(uniqueEmails(replaceIds(item.request.body.raw)));
  } else if (step.form) {
    // Asked for raw bodies, the converter leaves out a body that can only be a form.
    item.request.body = { mode: "urlencoded", urlencoded: Object.entries(step.form).map(([key, value]) => ({ key, value })) };
  } else if (step.body) {
    fail(`${step.op}: the plan gives a body, but the converter's request has no body of that kind`);
  }

  // Tests: the status is one the spec lists, and the one this run expects;
  // then store what the next requests need.
  const expect = step.expect ?? [info.success];
  // A GET sent with If-None-Match may answer 304, which the spec lists.
  const notModified = info.statuses.includes(304);
  const lines = [
    `// Generated by gen/tools/postman.mjs from openapi.yaml (${step.op}).`,
    `const listed = ${JSON.stringify(info.statuses)};`,
    `pm.test(${JSON.stringify(`${info.method} ${info.path} answers a status that openapi.yaml lists`)}, function () {`,
    `    pm.expect(listed, "status " + pm.response.code).to.include(pm.response.code);`,
    `});`,
    `const expected = ${JSON.stringify(expect)};`,
    ...(notModified ? [`if (pm.request.headers.has("If-None-Match")) expected.push(304);`] : []),
    `pm.test(${JSON.stringify(`${name}: ${expect.join(" or ")}`)}, function () {`,
    `    pm.expect(expected, pm.response.text()).to.include(pm.response.code);`,
    `});`,
  ];
  if (step.save) {
    lines.push(`if (pm.response.code >= 200 && pm.response.code < 300) {`, `    const body = pm.response.json();`);
    for (const [variable, member] of Object.entries(step.save)) {
      lines.push(`    pm.collectionVariables.set(${JSON.stringify(variable)}, body.${member});`);
    }
    lines.push(`}`);
  }
  const kind = recordKind(info.path);
  if (kind) {
    lines.push(`const etag = pm.response.headers.get("ETag");`, `if (etag) pm.collectionVariables.set("${kind}Etag", etag);`);
  }
  item.event = [{ listen: "test", script: { id: uuid(`test ${item.id}`), type: "text/javascript", exec: lines } }];
  // Variables the request cannot do without: unset, it is not sent.
  for (const [variable, hint] of Object.entries(step.needs ?? {})) {
    item.event.unshift({
      listen: "prerequest",
      script: {
        id: uuid(`prerequest ${item.id} ${variable}`),
        type: "text/javascript",
        exec: [
          `if (!pm.variables.get(${JSON.stringify(variable)})) {`,
          `    pm.test(${JSON.stringify(`${variable} is set`)}, function () {`,
          `        throw new Error(${JSON.stringify(`${variable} is empty: ${hint}`)});`,
          `    });`,
          `    pm.execution.skipRequest();`,
          `}`,
        ],
      },
    });
  }

  // Saved responses carry converter-made ids; make them stable.
  for (const [i, res] of (item.response ?? []).entries()) {
    if (res.id) res.id = uuid(`response ${item.id} ${i}`);
  }
  return item;
}

// paramValue is what a query or header parameter of an operation shows: its
// example or default, or a placeholder such as <date-time>; for a parameter
// that takes several values, one of them.
function paramValue(info, where, name) {
  const p = findParam(info, where, name);
  if (!p) fail(`${info.id}: the converter made a ${where} parameter ${name} that the spec does not declare`);
  if (where === "header" && headerValues[name.toLowerCase()]) return headerValues[name.toLowerCase()];
  if (where === "header" && ["if-match", "if-none-match"].includes(name.toLowerCase()) && recordKind(info.path)) {
    return `{{${recordKind(info.path)}Etag}}`;
  }
  let schema = resolve(p.schema ?? {});
  if (schema.type === "array") schema = resolve(schema.items ?? {}); // one of the values
  const value = p.example ?? schema.example ?? schema.default;
  if (value !== undefined) return String(value);
  if (schema.enum) return `<${schema.enum.join("|")}>`;
  return `<${schema.format ?? schema.type ?? "string"}>`;
}

function isParam(info, where, name) {
  return findParam(info, where, name) !== undefined;
}

function findParam(info, where, name) {
  const op = spec.paths[info.path][info.method.toLowerCase()];
  const params = [...(spec.paths[info.path].parameters ?? []), ...(op.parameters ?? [])].map(resolve);
  return params.find((x) => x.in === where && x.name.toLowerCase() === name.toLowerCase());
}

// resolve follows a local $ref ("#/components/...").
function resolve(node) {
  while (node && node.$ref) {
    node = node.$ref.slice(2).split("/").reduce((n, key) => n[key.replaceAll("~1", "/").replaceAll("~0", "~")], spec);
  }
  return node;
}

function replaceIds(value) {
  if (typeof value !== "string") return value;
  return value.replace(/6553f1a2c8e4b2a1d0f0000[123]/g, (id) => exampleIds[id]);
}

// uniqueEmails makes the example emails of a body unique to the moment it is
// sent ("grace+1764150000@example.com"): emails are unique in the CRM, and
// the spec's examples are the ones a reader tries first (the README's curl
// session creates them), which would make the run's creates answer 409.
function uniqueEmails(raw) {
  return raw.replace(/"email": "([^"@]+)@([^"]+)"/g, '"email": "$1+{{$timestamp}}@$2"');
}

// randomPasswords gives each password of a body a random value when it is
// sent ({{$randomPassword}}, 15 letters and digits): the spec's example
// password is published, and a run stopped before "Clean up" would leave an
// account that anyone could sign in to.
function randomPasswords(raw) {
  return raw.replace(/"password": "[^"]*"/g, '"password": "{{$randomPassword}}"');
}

// uuid is a name-based (version 5 style) UUID, so that regenerating gives the
// same file.
function uuid(name) {
  const h = createHash("sha1").update(`opencrm/crm postman ${name}`).digest("hex");
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function convert(text) {
  const result = await promisify(converter.convertV2)(
    { type: "string", data: text },
    {
      folderStrategy: "Tags",
      // Bodies, parameters and saved responses from the spec's examples.
      parametersResolution: "Example",
      // Optional query parameters and headers are there, but off: a run sends
      // only what an operation needs.
      enableOptionalParameters: false,
      preferredRequestBodyType: "raw",
      requestNameSource: "Fallback",
      indentCharacter: "Space",
      includeAuthInfoInExample: false,
      includeDeprecated: true,
    },
  );
  if (!result.result) fail(`openapi-to-postmanv2: ${result.reason}`);
  return result;
}

function fail(message) {
  console.error(`postman.mjs: ${message}`);
  process.exit(1);
}
