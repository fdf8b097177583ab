-- The CATALOG stream sequence of the event that last set an item's attributes: a
-- redelivered older catalog.item.upserted must not overwrite a newer one.
ALTER TABLE items ADD COLUMN seq bigint NOT NULL DEFAULT 0;
