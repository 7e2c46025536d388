/**
 * Writes testkit/pipedrive-openapi/operations.json: the operations of Pipedrive's official OpenAPI
 * documents (v1 and v2) that the mirror calls, dereferenced, with their x-token-cost. The fake
 * Pipedrive validates requests and its own responses against them. Run it from the repository root
 * where Pipedrive's documents are at hand (CI and users have only the vendored file):
 *   node --import tsx testkit/pipedrive-openapi/vendor.ts <pipedrive-v1-openapi.yml> <pipedrive-v2-openapi.yml>
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';

/** [document, path, method]; the fake's routes are these, prefixed /v1 or /api/v2. */
const USED = [
  ['v2', '/persons', 'get'],
  ['v2', '/persons', 'post'],
  ['v2', '/persons/search', 'get'],
  ['v2', '/persons/{id}', 'get'],
  ['v2', '/persons/{id}', 'patch'],
  ['v2', '/persons/{id}', 'delete'],
  ['v1', '/persons/{id}/merge', 'put'],
  ['v1', '/notes', 'get'],
  ['v1', '/notes', 'post'],
  ['v1', '/webhooks', 'get'],
  ['v1', '/webhooks', 'post'],
  ['v1', '/webhooks/{id}', 'delete'],
] as const;

async function main(): Promise<void> {
  const [v1File, v2File] = process.argv.slice(2);
  if (!v1File || !v2File) throw new Error('usage: vendor.ts <pipedrive-v1-openapi.yml> <pipedrive-v2-openapi.yml>');
  const documents = {
    v1: (await SwaggerParser.dereference(v1File)) as { paths: Record<string, Record<string, unknown>> },
    v2: (await SwaggerParser.dereference(v2File)) as { paths: Record<string, Record<string, unknown>> },
  };
  const operations = USED.map(([version, route, method]) => {
    const operation = documents[version].paths[route]?.[method];
    if (!operation) throw new Error(`${version} ${method.toUpperCase()} ${route} is not in the document`);
    return { version, path: route, method, operation };
  });
  const vendored = {
    source: {
      documents: ['Pipedrive API v1 OpenAPI document (pipedrive-v1-openapi.yml)', 'Pipedrive API v2 OpenAPI document (pipedrive-v2-openapi.yml)'],
      publisher: 'Pipedrive (developers.pipedrive.com), as published in 2026',
      vendored: new Date().toISOString().slice(0, 10),
      note: 'Only the operations the mirror calls, dereferenced; regenerate with testkit/pipedrive-openapi/vendor.ts',
    },
    operations,
  };
  writeFileSync(path.join(__dirname, 'operations.json'), `${JSON.stringify(vendored, null, 1)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
