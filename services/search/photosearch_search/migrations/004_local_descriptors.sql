-- Local descriptors of catalog images, per model: the cells of each image's feature grid
-- (int8 codes, usually the 250 most salient cells), matched against a query's own to
-- re-rank search candidates. Written beside the image's vectors, deleted with them.
ALTER TABLE models ADD COLUMN local_dim integer CHECK (local_dim > 0);
-- When the model's first descriptors were stored: images whose vectors are older and have
-- none were embedded before its embedders made them, and a rebuild queues them again.
ALTER TABLE models ADD COLUMN local_since timestamptz;

CREATE TABLE local_descriptors (
    model_id text NOT NULL REFERENCES models (model_id) ON DELETE CASCADE,
    image_id text NOT NULL,
    item_id text NOT NULL,
    grid_rows smallint NOT NULL CHECK (grid_rows > 0),
    grid_cols smallint NOT NULL CHECK (grid_cols > 0),
    dim smallint NOT NULL CHECK (dim > 0),
    -- Row-major grid index of each coded cell, little-endian int16; NULL = every cell.
    cells bytea,
    -- int8 codes, cell after cell, dim bytes each.
    codes bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, image_id)
);
-- Codes are near-random bytes: compressing them costs time and saves nothing.
ALTER TABLE local_descriptors ALTER COLUMN codes SET STORAGE EXTERNAL;
CREATE INDEX local_descriptors_item ON local_descriptors (item_id, model_id);
CREATE INDEX local_descriptors_image ON local_descriptors (image_id);
