-- The last 64 runs of a series (1 bit a failing run, the latest in bit 0)
-- for alert.after "X of Y", and its consecutive upgraded runs for
-- alert.recover_after. A series written before has neither: 0 (the
-- defaults, one run, read them as before).

-- +goose Up
ALTER TABLE series ADD COLUMN recent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN ok_streak INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE series DROP COLUMN ok_streak;
ALTER TABLE series DROP COLUMN recent;
