import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { withClient } from './pg-admin';
import { parseIntoClientConfig } from 'pg-connection-string';

// Driver adapter for Prisma's JavaScript (wasm) schema engine, which runs `prisma migrate`
// here because the native engine cannot be downloaded. It works around three defects of
// @prisma/adapter-pg 6.19.3 on that path; PrismaClient's runtime adapter is unaffected.

type Adapter = Awaited<ReturnType<PrismaPg['connect']>>;
type QueryCallback = (err: Error | null, result: unknown) => void;

const CHAR_OID = 18;
const NAME_OID = 19;
const TEXT_OID = 25;

function reportCatalogTypesAsText(result: unknown): void {
  for (const each of Array.isArray(result) ? result : [result]) {
    for (const field of (each as Partial<pg.QueryResult> | undefined)?.fields ?? []) {
      if (field.dataTypeID === NAME_OID || field.dataTypeID === CHAR_OID) {
        field.dataTypeID = TEXT_OID;
      }
    }
  }
}

// Defect 1 (prisma/orm#27403): the engine's introspection queries return catalog columns of
// type `name` and `"char"`, which the adapter cannot map ("Column type 'name' could not be
// deserialized"). pg already parses both as strings, so report them as text. Both calling
// styles must keep working: pg.Pool#query passes a callback and never awaits a promise.
class CatalogTypesAsTextClient extends pg.Client {
  // pg's overloads return the submittable, a promise or void: only `any` satisfies them all.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: unknown[]): any {
    const last = args.at(-1);
    if (typeof last === 'function') {
      const callback = last as QueryCallback;
      args[args.length - 1] = (err: Error | null, result: unknown) => {
        if (!err) reportCatalogTypesAsText(result);
        callback(err, result);
      };
      return Reflect.apply(pg.Client.prototype.query, this, args);
    }
    const returned: unknown = Reflect.apply(pg.Client.prototype.query, this, args);
    if (returned instanceof Promise) {
      return returned.then((result: unknown) => {
        reportCatalogTypesAsText(result);
        return result;
      });
    }
    return returned;
  }
}

class MigrationAdapterFactory extends PrismaPg {
  constructor(private readonly poolConfig: pg.PoolConfig) {
    super(poolConfig);
  }

  // Defect 2: upstream executeScript() splits a migration on every `;`, even inside string
  // literals and dollar-quoted function bodies, and runs the pieces one by one (not atomic).
  // A parameterless query goes over pg's simple-query protocol, which takes the whole script
  // and runs it in one implicit transaction, as the native engine does.
  override async connect(): Promise<Adapter> {
    const adapter = await super.connect();
    adapter.executeScript = async (script) => {
      await adapter.executeRaw({ sql: script, args: [], argTypes: [] });
    };
    return adapter;
  }

  // Defect 3: upstream connectToShadowDb() builds the shadow pool as `{ ...config, database }`,
  // so a `connectionString` in the config wins and the "shadow" database is the main one
  // (P3006 "relation ... already exists"). It also drops the shadow database while its own
  // pool is still connected, which fails and leaves prisma_migrate_shadow_db_* behind.
  // Hence discrete connection fields, and a shadow database closed before it is dropped.
  override async connectToShadowDb(): Promise<Adapter> {
    const database = `prisma_migrate_shadow_db_${randomUUID()}`;
    await this.runOnMainDatabase(`CREATE DATABASE "${database}"`);
    const shadow = await new MigrationAdapterFactory({ ...this.poolConfig, database }).connect();
    const closePool = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await closePool();
      // FORCE also ends connections the engine may not have released.
      await this.runOnMainDatabase(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    };
    return shadow;
  }

  private async runOnMainDatabase(sql: string): Promise<void> {
    await withClient(this.poolConfig, (client) => client.query(sql));
  }
}

export function createMigrationAdapter(connectionString: string): PrismaPg {
  return new MigrationAdapterFactory({
    ...parseIntoClientConfig(connectionString),
    Client: CatalogTypesAsTextClient,
    // The CLI never disposes its adapter: without this, idle pooled connections keep every
    // command's process alive for the pool's 10 s idle timeout.
    allowExitOnIdle: true,
  });
}
