-- The province overview: approximate centroids of administrative units for the wall's map
-- (optional columns of areas.csv; NULL when a deployment's file has none).

ALTER TABLE {db}.ref_areas ADD COLUMN IF NOT EXISTS lat Nullable(Float64) AFTER valid_from;

ALTER TABLE {db}.ref_areas ADD COLUMN IF NOT EXISTS lon Nullable(Float64) AFTER lat;
