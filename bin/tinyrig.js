#!/usr/bin/env node
// Launcher of the tinyrig CLI: runs the TypeScript sources through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../server/src/cli/main.ts');
process.exitCode = await run(process.argv.slice(2));
