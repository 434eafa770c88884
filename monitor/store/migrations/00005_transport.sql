-- Transports: a check's WebSocket goes over HTTP/1.1 and, for wss://, over
-- HTTP/2 (RFC 8441), and each is a series of its own (a cell of the
-- matrix): one path may break while the other works. Rows from before are
-- HTTP/1.1's. The series table is rebuilt, its key gaining the transport.

-- +goose Up
CREATE TABLE series_new (
    check_name  TEXT    NOT NULL,
    vantage     TEXT    NOT NULL,
    route       TEXT    NOT NULL,
    transport   TEXT    NOT NULL,
    member      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    cause       TEXT    NOT NULL,
    since       BIGINT  NOT NULL,
    first_seen  BIGINT  NOT NULL,
    fail_streak INTEGER NOT NULL,
    trace_id    TEXT    NOT NULL,
    updated     BIGINT  NOT NULL,
    stale_after BIGINT  NOT NULL,
    attempts    TEXT    NOT NULL,
    PRIMARY KEY (check_name, vantage, route, transport)
);
INSERT INTO series_new SELECT check_name, vantage, route, 'http1', member, outcome, status, cause, since, first_seen,
    fail_streak, trace_id, updated, stale_after, attempts FROM series;
DROP TABLE series;
ALTER TABLE series_new RENAME TO series;
ALTER TABLE history ADD COLUMN transport TEXT NOT NULL DEFAULT 'http1';

-- +goose Down
DELETE FROM series WHERE transport <> 'http1';
CREATE TABLE series_old (
    check_name  TEXT    NOT NULL,
    vantage     TEXT    NOT NULL,
    route       TEXT    NOT NULL,
    member      TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    cause       TEXT    NOT NULL,
    since       BIGINT  NOT NULL,
    first_seen  BIGINT  NOT NULL,
    fail_streak INTEGER NOT NULL,
    trace_id    TEXT    NOT NULL,
    updated     BIGINT  NOT NULL,
    stale_after BIGINT  NOT NULL,
    attempts    TEXT    NOT NULL,
    PRIMARY KEY (check_name, vantage, route)
);
INSERT INTO series_old SELECT check_name, vantage, route, member, outcome, status, cause, since, first_seen,
    fail_streak, trace_id, updated, stale_after, attempts FROM series;
DROP TABLE series;
ALTER TABLE series_old RENAME TO series;
ALTER TABLE history DROP COLUMN transport;
