# contact-sync API image. Needs a PostgreSQL (DATABASE_URL, or POSTGRES_HOST and friends):
# the embedded PostgreSQL of `npm start` is not part of the image.

FROM node:22-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so this layer is rebuilt only when the lockfile changes.
# --ignore-scripts: dependencies' install scripts would download Prisma's native engines,
# which this project does not use; the project's own postinstall runs below instead.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# postinstall runs `prisma generate` (client into node_modules/.prisma), which loads
# prisma.config.ts and so src/db/migration-adapter.ts.
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY src ./src
# --omit=optional drops the embedded PostgreSQL binaries (about 60 MB), unused with a real database;
# node_modules/.cache holds jiti's build-time transpilations of prisma.config.ts.
RUN node scripts/postinstall.js \
 && npm run build \
 && npm prune --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/.cache

FROM node:22-bookworm-slim AS runtime
# CHECKPOINT_DISABLE: no Prisma update check when someone runs the CLI in the container.
ENV NODE_ENV=production \
    PORT=8000 \
    CHECKPOINT_DISABLE=1
WORKDIR /app

# Owned by root and read-only for the `node` user that runs the service.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# At start-up the service runs `prisma migrate deploy` itself (AUTO_MIGRATE=true) before it
# listens; the Prisma CLI reads the schema and migrations and loads prisma.config.ts, which
# imports the migration adapter (and its connection helper) as TypeScript.
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/prisma.config.ts ./
COPY --from=build /app/src/db/migration-adapter.ts ./src/db/migration-adapter.ts
COPY --from=build /app/src/db/pg-admin.ts ./src/db/pg-admin.ts

USER node
EXPOSE 8000
# /health answers without the database; slim images have no curl, so node asks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node as PID 1: the service handles SIGTERM itself (graceful shutdown).
CMD ["node", "--max-old-space-size=128", "dist/server.js"]
