-- The region index: per model, a codebook of visual words (k-means of the stored local
-- descriptors) and the words each stored photo holds, so that the photos sharing the
-- most distinctive words with a query are found in one indexed query, whatever the
-- fingerprint ranks them. All of it is derived from local_descriptors: a codebook can be
-- trained again and its postings rebuilt at any time.
CREATE TABLE codebooks (
    model_id text NOT NULL REFERENCES models (model_id) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version > 0),
    dim smallint NOT NULL CHECK (dim > 0),
    -- float32, little-endian: words x dim unit centroids, then one idf per word.
    centroids bytea NOT NULL,
    idf bytea NOT NULL,
    -- Photos it was trained on (a larger catalog trains a new version).
    trained_photos integer NOT NULL CHECK (trained_photos > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Set once every stored photo had its postings: searches use the newest ready one.
    ready_at timestamptz,
    PRIMARY KEY (model_id, version)
);
ALTER TABLE codebooks ALTER COLUMN centroids SET STORAGE EXTERNAL;

CREATE TABLE region_postings (
    model_id text NOT NULL,
    version integer NOT NULL,
    word integer NOT NULL,
    image_id text NOT NULL,
    item_id text NOT NULL,
    -- idf of the word over the norm of the photo's bag of words.
    weight real NOT NULL,
    PRIMARY KEY (model_id, version, word, image_id) INCLUDE (item_id, weight),
    FOREIGN KEY (model_id, image_id) REFERENCES local_descriptors (model_id, image_id)
        ON DELETE CASCADE,
    FOREIGN KEY (model_id, version) REFERENCES codebooks (model_id, version) ON DELETE CASCADE
);
CREATE INDEX region_postings_image ON region_postings (model_id, image_id, version);
