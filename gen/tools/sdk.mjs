// Generates the TypeScript SDK (gen/typescript/) from openapi.yaml:
//
//   node gen/tools/sdk.mjs openapi.yaml gen/typescript     (what `make sdk` runs)
//
// schema.d.ts is openapi-typescript's output: the `paths` and `components` types.
// The rest is copied from gen/tools/sdk/: a small typed client over openapi-fetch
// (index.js, index.d.ts), its package.json (version from info.version) and README.
// The output depends only on the spec and the pinned tools, so a test can
// regenerate it and fail when the committed copy is stale.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import yaml from "js-yaml";

const [specPath, outDir] = process.argv.slice(2);
if (!specPath || !outDir) {
  console.error("usage: node gen/tools/sdk.mjs <openapi.yaml> <output directory>");
  process.exit(2);
}
const templates = join(dirname(fileURLToPath(import.meta.url)), "sdk");
const spec = yaml.load(readFileSync(specPath, "utf8"));

const ast = await openapiTS(pathToFileURL(resolve(specPath)), { silent: true });
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "schema.d.ts"), COMMENT_HEADER + astToString(ast));

for (const name of readdirSync(templates)) {
  let text = readFileSync(join(templates, name), "utf8");
  text = text.replaceAll("{{version}}", spec.info.version).replaceAll("{{title}}", spec.info.title);
  writeFileSync(join(outDir, name), text);
}
console.log(`TypeScript SDK for ${spec.info.title} ${spec.info.version} written to ${outDir}`);
