-- Search's own state. Vectors live in one table per model (vectors_<id>), created at
-- run time when the model's dimension is first known, each with its own HNSW index.

CREATE TABLE models (
    id serial PRIMARY KEY,
    model_id text NOT NULL UNIQUE,
    dim integer NOT NULL CHECK (dim > 0 AND dim <= 2000),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Single-row settings, e.g. the active model.
CREATE TABLE search_settings (
    key text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Filterable attributes of catalog items (from catalog.item.upserted), lower-cased.
CREATE TABLE items (
    item_id text PRIMARY KEY,
    series text,
    maker text,
    tags text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Tombstones: a vector that arrives after its image or item was deleted is dropped.
CREATE TABLE deleted_images (
    image_id text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE deleted_items (
    item_id text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Images a model cannot embed (from embed.failed), with the reason.
CREATE TABLE embed_failures (
    model_id text NOT NULL,
    image_id text NOT NULL,
    item_id text NOT NULL,
    reason text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, image_id)
);
CREATE INDEX embed_failures_item ON embed_failures (item_id);

-- Embed jobs published and not answered yet: what a rebuild must not queue twice.
CREATE TABLE embed_requests (
    model_id text NOT NULL,
    image_id text NOT NULL,
    item_id text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now(),
    rebuild_id text,
    PRIMARY KEY (model_id, image_id)
);
CREATE INDEX embed_requests_item ON embed_requests (item_id);

-- One row per model: its latest rebuild. heartbeat_at moves while the walk runs, so a
-- walk whose replica died stops counting as "in progress".
CREATE TABLE rebuilds (
    model_id text PRIMARY KEY,
    rebuild_id text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    queued bigint NOT NULL DEFAULT 0,
    error text
);
