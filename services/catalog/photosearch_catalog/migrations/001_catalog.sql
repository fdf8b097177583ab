-- Items, their images (metadata + bytes), admin settings and the event outbox.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A random id per catalog database: outbox message ids are "<instance>:<outbox id>",
-- so a re-created database never collides with JetStream's de-duplication window.
CREATE TABLE catalog_instance (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO catalog_instance DEFAULT VALUES;

CREATE TABLE items (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (name <> ''),
    series text NOT NULL DEFAULT '',
    maker text NOT NULL DEFAULT '',
    year integer NOT NULL DEFAULT 0,
    variant text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    attributes jsonb NOT NULL DEFAULT '{}',
    external_refs jsonb NOT NULL DEFAULT '[]',
    -- Stable key of the import record that made the item; NULL for manual entries.
    import_key text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Listing order (keyset pagination) and the case-insensitive name search.
CREATE INDEX items_by_name ON items (lower(name), id);
CREATE INDEX items_name_trgm ON items USING gin (name gin_trgm_ops);
CREATE INDEX items_by_series ON items (lower(series));
CREATE INDEX items_by_maker ON items (lower(maker));
CREATE INDEX items_by_tag ON items USING gin (tags);

CREATE TABLE images (
    id uuid PRIMARY KEY,
    item_id uuid NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    role smallint NOT NULL CHECK (role IN (1, 2)),
    sha256 text NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    format text NOT NULL,
    size_bytes bigint NOT NULL,
    filename text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The same bytes twice on one item are one image.
    UNIQUE (item_id, sha256)
);
-- Images of an item in cover order: official first, then oldest first.
CREATE INDEX images_by_item ON images (item_id, role, created_at, id);

-- The embedded image store (see storage.py); photos are already compressed,
-- so EXTERNAL skips Postgres' pointless compression attempt.
CREATE TABLE image_blobs (
    image_id uuid PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    data bytea NOT NULL
);
ALTER TABLE image_blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- Events written in the same transaction as the change; the relay publishes them
-- to JetStream in id order (= commit order) and deletes them once acked.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject text NOT NULL,
    payload bytea NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_settings (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    photo_search_enabled boolean NOT NULL DEFAULT false,
    web_fallback_enabled boolean NOT NULL DEFAULT false,
    -- Fernet token (CATALOG_SETTINGS_KEY); a dump of the database alone does not reveal it.
    vision_api_key_encrypted bytea,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO admin_settings DEFAULT VALUES;
