#!/usr/bin/env node
// A `solc` executable over solcjs (wasm) that speaks the parts of the native CLI that
// py-solc-x, ape-solidity and other solc clients use: --version and --standard-json.
// Imports are resolved from the project root, node_modules and any --base-path/--include-path.
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = path.resolve(__dirname, '..');
const solc = require(path.join(projectRoot, 'node_modules', 'solc'));

function fullVersion() {
  // solcjs reports e.g. "0.8.28+commit.7893614a.Emscripten.clang"; native solc prints
  // "0.8.28+commit.7893614a.Linux.g++": clients parse only "<semver>+commit.<hash>".
  return solc.version().replace('.Emscripten.clang', '.Linux.g++');
}

const args = process.argv.slice(2);

if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write('solc, the solidity compiler commandline interface\n');
  process.stdout.write('Version: ' + fullVersion() + '\n');
  process.exitCode = 0;
  return;
}

if (!args.includes('--standard-json')) {
  process.stderr.write(
    'this solc is a solcjs wrapper: only --version and --standard-json are supported\n');
  process.exitCode = 2;
  return;
}

const searchPaths = [process.cwd(), projectRoot, path.join(projectRoot, 'node_modules')];
for (let i = 0; i < args.length; i++) {
  if ((args[i] === '--base-path' || args[i] === '--include-path' || args[i] === '--allow-paths')
      && i + 1 < args.length) {
    for (const p of args[i + 1].split(',')) searchPaths.push(path.resolve(p));
    i++;
  }
}

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : searchPaths.map((base) => path.join(base, importPath));
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, 'utf8') };
    } catch (_err) { /* try the next search path */ }
  }
  return { error: 'File not found: ' + importPath };
}

const input = fs.readFileSync(0, 'utf8');
let parsed;
try {
  parsed = JSON.parse(input);
} catch (err) {
  process.stdout.write(JSON.stringify({ errors: [{ severity: 'error', type: 'JSONError',
    component: 'general', message: 'invalid standard JSON input: ' + err.message,
    formattedMessage: 'invalid standard JSON input: ' + err.message }] }));
  process.exitCode = 0;
  return;
}
// Native solc reads "urls" from disk; solcjs needs "content": load it here.
for (const [name, source] of Object.entries(parsed.sources || {})) {
  if (source.content === undefined && Array.isArray(source.urls)) {
    for (const url of source.urls) {
      const found = findImports(url);
      if (found.contents !== undefined) { source.content = found.contents; delete source.urls; break; }
    }
    if (source.content === undefined) {
      const found = findImports(name);
      if (found.contents !== undefined) { source.content = found.contents; delete source.urls; }
    }
  }
}
const output = solc.compile(JSON.stringify(parsed), { import: findImports });
// Writing and then setting exitCode (never process.exit) keeps stdout from being cut at 64 KiB.
process.stdout.write(output);
process.exitCode = 0;
