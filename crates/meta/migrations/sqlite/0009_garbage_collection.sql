-- The garbage collector asks which stored files a blob record names, and which blobs are old.
CREATE INDEX blobs_by_location ON blobs(location);
CREATE INDEX blobs_by_time ON blobs(created_at);
