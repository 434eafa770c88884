-- History that fits a fleet (README, "History"): every attempt stays in
-- history for history.raw (48h by default); each hour of it is rolled up
-- per series (check x vantage x route x transport) into one row of counts
-- by outcome, status and cause and a latency histogram, kept for
-- history.keep (400d). Counts are "key:n" pairs separated by spaces, the
-- histograms "bucket:n" pairs on store.durations' buckets. meta's
-- rollup.until is the hour up to which history is rolled up: raw rows
-- before it are in rollups, and only those may be pruned.
-- On PostgreSQL the store then turns history into a table partitioned by
-- day (partition.go), so that a prune drops partitions.

-- +goose Up
CREATE TABLE rollups (
    check_name TEXT    NOT NULL,
    vantage    TEXT    NOT NULL,
    route      TEXT    NOT NULL,
    transport  TEXT    NOT NULL,
    hour       BIGINT  NOT NULL,
    runs       INTEGER NOT NULL,
    upgraded   INTEGER NOT NULL,
    first_at   BIGINT  NOT NULL,
    last_at    BIGINT  NOT NULL,
    outcomes   TEXT    NOT NULL,
    statuses   TEXT    NOT NULL,
    causes     TEXT    NOT NULL,
    latency    TEXT    NOT NULL,
    reply      TEXT    NOT NULL,
    PRIMARY KEY (check_name, vantage, route, transport, hour)
);
CREATE INDEX rollups_by_hour ON rollups (hour);
INSERT INTO meta (name, value) VALUES ('rollup.until', '0');

-- +goose Down
DELETE FROM meta WHERE name = 'rollup.until';
DROP TABLE rollups;
