-- What a search answer shows of each item (from catalog.item.upserted, as catalog spells
-- it), so that a search needs no name lookup in catalog. name IS NULL: not heard yet
-- (rows from before this column); the backfill and the next item event fill it.
ALTER TABLE items
    ADD COLUMN name text,
    ADD COLUMN series_shown text,
    ADD COLUMN maker_shown text,
    ADD COLUMN year integer,
    ADD COLUMN variant text;
CREATE INDEX items_unnamed ON items (item_id) WHERE name IS NULL;
