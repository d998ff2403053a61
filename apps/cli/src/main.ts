#!/usr/bin/env node
/**
 * vmctl: the command line of vmctld's REST/WebSocket API. Exit status: see exit-codes.ts
 * (and apps/cli/README.md).
 */
import { run } from './cli.js';

const status = await run(process.argv.slice(2));
// let what was printed reach a pipe before the process ends
process.stdout.write('', () => process.exit(status));
