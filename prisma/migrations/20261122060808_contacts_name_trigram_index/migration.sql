-- GET /contacts?search= matches contacts.name with ILIKE '%term%' (Prisma `contains`, mode
-- insensitive), which the B-tree index contacts_name_idx cannot serve: without this index every
-- search and its count read the whole table. A pg_trgm GIN index serves ILIKE '%…%' for terms
-- of 3 characters or more (shorter ones still read the table, as before).
--
-- prisma/schema.prisma declares the index (@@index(..., type: Gin) with gin_trgm_ops) but not the
-- extension: this CREATE EXTENSION is written by hand (why: the comment above that index).

-- CreateExtension
-- pg_trgm ships with PostgreSQL's contrib modules (Debian/Ubuntu packages, the official Docker
-- images, embedded-postgres, managed services). It is a trusted extension: the database's owner,
-- or any role with CREATE on the database, may create it; otherwise a superuser creates it once
-- beforehand (docs/operators.md) and IF NOT EXISTS lets this migration go on.
CREATE EXTENSION IF NOT EXISTS "pg_trgm";

-- CreateIndex
-- Runs in the migration's transaction, so not CONCURRENTLY: writes to contacts wait while it is
-- built (about 0.1 s for 10,000 contacts). For a table large enough for that to matter, build it
-- by hand first with CREATE INDEX CONCURRENTLY under this name (docs/operators.md); IF NOT EXISTS
-- then skips it here.
CREATE INDEX IF NOT EXISTS "contacts_name_trgm_idx" ON "contacts" USING GIN ("name" gin_trgm_ops);

COMMENT ON INDEX "contacts_name_trgm_idx" IS 'Trigram (pg_trgm) GIN index on name: serves GET /contacts?search= (name ILIKE ''%term%'') and its count for terms of 3 or more characters.';
