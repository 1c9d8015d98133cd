// Validate YAML files against a JSON Schema as an editor does: the `yaml` package reads
// YAML 1.2 (the YAML language server's parser), ajv checks draft 2020-12 with every format.
// Usage: node validate.mjs SCHEMA.json FILE.yaml …  Prints one JSON object:
// {"FILE.yaml": [problems …], …}; an empty list means the file is valid. Exit 0 either way
// (the caller decides); exit 2 when the schema itself does not compile.
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse } from "yaml";

const [schemaPath, ...files] = process.argv.slice(2);
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
let validate;
try {
  validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
} catch (error) {
  console.error(`${schemaPath}: ${error.message}`);
  process.exit(2);
}
const report = {};
for (const file of files) {
  const data = parse(readFileSync(file, "utf8"));
  report[file] = validate(data)
    ? []
    : validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
}
console.log(JSON.stringify(report));
