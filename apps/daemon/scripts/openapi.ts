/** Writes openapi/vmctl.json from the daemon's zod schemas: `npm run openapi -w @vmctl/daemon`. */
import { writeFileSync } from 'node:fs';
import { generateOpenApi } from '../src/openapi-document.js';
import { OPENAPI_FILE } from '../src/openapi.js';

writeFileSync(OPENAPI_FILE, await generateOpenApi());
process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
