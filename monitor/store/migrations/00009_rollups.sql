-- History that fits a fleet (README, "Store and history"): every attempt
-- stays in history for history.raw (48h by default), in a compact row that
-- names its series by id; each hour of it is rolled up per series into one
-- row of counts by outcome, status and cause and a latency histogram, kept
-- for history.keep (400d). Counts are "key:n" pairs separated by spaces,
-- the histograms "bucket:n" pairs on store.durations' buckets.
--
-- series_keys names a series: id is the FNV-64a hash of check, vantage,
-- route, transport and member (store.seriesID), so every member of a fleet
-- computes the same id without asking the others.
--
-- The rows of the history before this version stay in history_legacy until
-- they are rolled up and older than history.raw; meta's
-- history.legacy_until is where they end, history.raw_from where raw rows
-- begin (reads before it take rollups), rollup.until the hour up to which
-- raw rows are rolled up (only rows before it may be pruned).
-- On PostgreSQL the store then makes history a table partitioned by day
-- (partition.go), so that a prune drops partitions.

-- +goose Up
ALTER TABLE history RENAME TO history_legacy;
CREATE TABLE series_keys (
    id         BIGINT NOT NULL PRIMARY KEY,
    check_name TEXT   NOT NULL,
    vantage    TEXT   NOT NULL,
    route      TEXT   NOT NULL,
    transport  TEXT   NOT NULL,
    member     TEXT   NOT NULL
);
CREATE INDEX series_keys_by_check ON series_keys (check_name);
CREATE TABLE history (
    at          BIGINT  NOT NULL,
    series      BIGINT  NOT NULL,
    status      INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    cause       TEXT    NOT NULL,
    duration_us INTEGER NOT NULL,
    reply_us    INTEGER NOT NULL,
    trace_id    BYTEA   NOT NULL
);
CREATE INDEX raw_by_series ON history (series, at);
CREATE INDEX raw_by_time ON history (at);
CREATE TABLE rollups (
    series   BIGINT  NOT NULL,
    hour     BIGINT  NOT NULL,
    runs     INTEGER NOT NULL,
    upgraded INTEGER NOT NULL,
    first_at BIGINT  NOT NULL,
    last_at  BIGINT  NOT NULL,
    outcomes TEXT    NOT NULL,
    statuses TEXT    NOT NULL,
    causes   TEXT    NOT NULL,
    latency  TEXT    NOT NULL,
    reply    TEXT    NOT NULL,
    PRIMARY KEY (series, hour)
);
CREATE INDEX rollups_by_hour ON rollups (hour);
INSERT INTO meta (name, value) VALUES ('rollup.until', '0');
INSERT INTO meta (name, value) SELECT 'history.legacy_until', CAST(COALESCE(MAX(at) + 1, 0) AS TEXT) FROM history_legacy;
INSERT INTO meta (name, value) SELECT 'history.raw_from', CAST(COALESCE(MAX(at) + 1, 0) AS TEXT) FROM history_legacy;

-- +goose Down
DELETE FROM meta WHERE name IN ('rollup.until', 'history.legacy_until', 'history.raw_from');
DROP TABLE rollups;
DROP TABLE history;
DROP TABLE series_keys;
ALTER TABLE history_legacy RENAME TO history;
