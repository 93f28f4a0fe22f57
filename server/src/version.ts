// The daemon's version: package.json's, read once.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './config.js';

export const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
