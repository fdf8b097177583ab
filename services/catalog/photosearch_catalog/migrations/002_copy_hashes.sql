-- Perceptual hashes of every image (copy_hash.py): the canonical PDQ hash and its views,
-- so the duplicate report catches copies without any model. Filled when an image is
-- added (copy_hasher.py, just after the commit); images stored before this table existed
-- are found by its periodic scan.
CREATE TABLE image_copy_hashes (
    image_id uuid PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    version smallint NOT NULL,
    quality smallint NOT NULL,
    views bytea NOT NULL
);
ALTER TABLE image_copy_hashes ALTER COLUMN views SET STORAGE EXTERNAL;
