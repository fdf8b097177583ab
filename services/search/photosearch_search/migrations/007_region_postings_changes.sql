-- How many statements have changed a codebook's postings (photos given theirs, photos
-- whose descriptors went or were replaced): search replicas that hold a codebook's
-- postings in memory (held_postings.py) read them again when it moves. Statement-level
-- triggers, so that a photo's postings (one statement) bump it once.
ALTER TABLE codebooks ADD COLUMN postings_changes bigint NOT NULL DEFAULT 0;

CREATE FUNCTION region_postings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- No row changed (e.g. a first store deleting no postings): no codebook row locked.
    UPDATE codebooks c SET postings_changes = c.postings_changes + 1
    FROM (SELECT DISTINCT model_id, version FROM changed) t
    WHERE c.model_id = t.model_id AND c.version = t.version;
    RETURN NULL;
END
$$;

CREATE TRIGGER region_postings_added AFTER INSERT ON region_postings
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION region_postings_changed();
CREATE TRIGGER region_postings_removed AFTER DELETE ON region_postings
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION region_postings_changed();
