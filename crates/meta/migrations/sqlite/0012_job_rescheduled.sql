-- A job scheduled again while a worker holds it must run again after that worker finishes: the
-- mark says so, and finishing then releases the job instead of deleting it.
ALTER TABLE jobs ADD COLUMN rescheduled INTEGER NOT NULL DEFAULT 0;
