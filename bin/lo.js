#!/usr/bin/env node
// The CLI bundle `npm run build` writes (scripts/bundle.js): a few files instead of the whole module graph.
import { main } from '../dist/bundle/main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
