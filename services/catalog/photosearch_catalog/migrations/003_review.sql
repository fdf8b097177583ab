-- Contributions wait for an admin's review. A pending item is left out of listings and
-- a pending image is not announced (no "image added" event, not walked by a rebuild),
-- so search never holds a vector of it until it is approved.
ALTER TABLE items
    ADD COLUMN pending boolean NOT NULL DEFAULT false,
    ADD COLUMN added_by text NOT NULL DEFAULT '';
ALTER TABLE images
    ADD COLUMN pending boolean NOT NULL DEFAULT false,
    ADD COLUMN added_by text NOT NULL DEFAULT '';
-- The review queue reads these few rows, never a scan of the catalog.
CREATE INDEX items_pending ON items (created_at) WHERE pending;
CREATE INDEX images_pending ON images (item_id, created_at) WHERE pending;
