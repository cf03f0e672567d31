#!/usr/bin/env node
// The CLI bundle `npm run build` writes (scripts/bundle.js): one CommonJS file (two: a light one for plan and help), started with V8's code cache
// (src/cli/loadBundle.ts, built to dist/bundle/start.cjs) so a command run before skips parsing and compiling what
// it ran. This file is CommonJS (bin/package.json): Node then starts without its ES module loader (docs/speed.md).
'use strict';
const { join } = require('node:path');
const { bundleFileFor, compileCacheRoot, loadBundle } = require('../dist/bundle/start.cjs');

const bundle = loadBundle({
  // `lo plan`, `--help`, `--version`: the light bundle, without the code only other commands run
  bundle: join(__dirname, '..', 'dist', 'bundle', bundleFileFor(process.argv)),
  cacheRoot: compileCacheRoot({ env: process.env }),
  argv: process.argv,
  importModule: (url) => import(url), // the agent (dist/agent/agent.js), ESM
});

bundle.exports.main(process.argv).then(
  (code) => {
    process.exitCode = code;
    if (code === 0) bundle.save();
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
