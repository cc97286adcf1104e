-- What DescribeImages reports: the image's size and when it was last pulled.
ALTER TABLE manifests ADD COLUMN image_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE manifests ADD COLUMN last_pulled_at INTEGER;
CREATE INDEX tags_by_name ON tags(repository_id, name);
