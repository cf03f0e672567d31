#!/usr/bin/env node
// The CLI bundle `npm run build` writes (scripts/bundle.js): one CommonJS file, started with V8's code cache
// (src/cli/loadBundle.ts) so a command run before skips parsing and compiling what it ran.
import { fileURLToPath } from 'node:url';
import { compileCacheRoot, loadBundle } from '../dist/cli/loadBundle.js';

const bundle = loadBundle({
  bundle: fileURLToPath(new URL('../dist/bundle/lo.cjs', import.meta.url)),
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
