// Write the public-API snapshots of a built tree: npx vite-node test/support/write-api-snapshots.ts -- <root> <out dir>
import path from 'node:path';
import { writeSnapshots } from './api-surface.js';

const [root, out] = process.argv.slice(2).filter((a) => a !== '--');
if (!root || !out) throw new Error('usage: write-api-snapshots.ts <repo root with dist/> <out dir>');
await writeSnapshots(path.resolve(root), path.resolve(out));
