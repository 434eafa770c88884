-- The time from the upgrade to the first expected message (a step's
-- expect, or the one-step form's reply), so a slow auth service shows in
-- the history before it fails. 0 when the run expected nothing.

-- +goose Up
ALTER TABLE history ADD COLUMN reply_ms DOUBLE PRECISION NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE history DROP COLUMN reply_ms;
