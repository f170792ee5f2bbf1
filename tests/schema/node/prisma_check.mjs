// Checks a Prisma schema with Prisma's own schema engine (its WebAssembly build): validate
// (exits 1 with the engine's errors), then prints JSON with the DMMF datamodel, the linter's
// warnings and whether Prisma's formatter would change the file: node prisma_check.mjs FILE
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const wasm = require("@prisma/prisma-schema-wasm");
const schema = readFileSync(process.argv[2], "utf8");
const files = [["schema.prisma", schema]];
const params = JSON.stringify({ prismaSchema: files, noColor: true });
try {
  wasm.validate(params);
} catch (error) {
  console.error(String(error));
  process.exit(1);
}
const dmmf = JSON.parse(wasm.get_dmmf(params));
const warnings = JSON.parse(wasm.lint(JSON.stringify(files)));
const formatOptions = { textDocument: { uri: "file:/schema.prisma" }, options: { tabSize: 2, insertSpaces: true } };
const formatted = JSON.parse(wasm.format(JSON.stringify(files), JSON.stringify(formatOptions)));
console.log(JSON.stringify({ datamodel: dmmf.datamodel, warnings, formatted: formatted[0][1] === schema }));
