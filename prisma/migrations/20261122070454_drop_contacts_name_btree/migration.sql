-- The B-tree index on contacts.name served no query: searches match name with ILIKE '%term%',
-- which the trigram index contacts_name_trgm_idx serves, and lists are ordered by id. It cost
-- every insert and rename an index update, and the planner sometimes scanned it whole for a search.

-- DropIndex
DROP INDEX "contacts_name_idx";
