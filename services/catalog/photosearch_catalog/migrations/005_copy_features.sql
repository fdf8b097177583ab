-- What the pixel check compares besides the PDQ hashes (copy_features.py): a colour
-- signature, ORB keypoints and a grey thumbnail. Hashes of scheme 1 have none and are
-- recomputed by the copy hasher's scan, as for any older scheme.
ALTER TABLE image_copy_hashes ADD COLUMN features bytea NOT NULL DEFAULT '';
ALTER TABLE image_copy_hashes ALTER COLUMN features SET STORAGE EXTERNAL;
