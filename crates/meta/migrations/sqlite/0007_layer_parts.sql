-- The ECR layer API's part-size rule: the size of an upload's most recent part, and of the first
-- part below the minimum that was not the last one.
ALTER TABLE uploads ADD COLUMN last_part_size INTEGER;
ALTER TABLE uploads ADD COLUMN short_part_size INTEGER;
-- Whether any image of a repository references a blob (GetDownloadUrlForLayer).
CREATE INDEX manifest_references_by_child ON manifest_references(repository_id, child_digest);
