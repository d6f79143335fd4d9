// Validates memlens speedscope output against the file-format JSON schema that the pinned
// speedscope package ships (dist/release/file-format-schema.json), with ajv.
// Usage: node validate-speedscope.mjs FILE.json ... ; prints "ok FILE" or the errors, exit 1.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Ajv = require("ajv");
const schemaPath = require.resolve("speedscope/dist/release/file-format-schema.json");
const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

let failed = false;
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(readFileSync(file, "utf8"));
  if (validate(doc)) {
    console.log(`ok ${file}`);
  } else {
    failed = true;
    console.log(`invalid ${file}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
}
process.exit(failed ? 1 : 0);
