-- The first schema of the store. Portable between SQLite and PostgreSQL:
-- times are BIGINT unix milliseconds, ids are made by the application,
-- flags are INTEGER 0/1, documents are JSON in TEXT.

-- +goose Up
CREATE TABLE series (
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

CREATE TABLE incidents (
    id          TEXT    NOT NULL PRIMARY KEY,
    check_name  TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    opened      BIGINT  NOT NULL,
    closed      BIGINT  NOT NULL,
    decision    TEXT    NOT NULL,
    view        TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    ts          TEXT    NOT NULL,
    posted      INTEGER NOT NULL,
    last_update BIGINT  NOT NULL,
    last_reply  BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL
);
-- At most one open incident per check, whatever the number of members.
CREATE UNIQUE INDEX incidents_one_open ON incidents (check_name) WHERE state = 'open';
CREATE INDEX incidents_by_check ON incidents (check_name, opened);

CREATE TABLE outbox (
    id          TEXT    NOT NULL PRIMARY KEY,
    seq         BIGINT  NOT NULL,
    incident    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    enqueued    BIGINT  NOT NULL,
    next_try    BIGINT  NOT NULL,
    attempts    INTEGER NOT NULL,
    claimed_by  TEXT    NOT NULL,
    lease_until BIGINT  NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_try, seq);
CREATE INDEX outbox_by_incident ON outbox (incident, seq);

CREATE TABLE history (
    at          BIGINT           NOT NULL,
    check_name  TEXT             NOT NULL,
    vantage     TEXT             NOT NULL,
    route       TEXT             NOT NULL,
    member      TEXT             NOT NULL,
    outcome     TEXT             NOT NULL,
    status      INTEGER          NOT NULL,
    cause       TEXT             NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    trace_id    TEXT             NOT NULL
);
CREATE INDEX history_by_check ON history (check_name, at);
CREATE INDEX history_by_time ON history (at);

CREATE TABLE warnings (
    check_name TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    since      BIGINT NOT NULL,
    detail     TEXT   NOT NULL,
    PRIMARY KEY (check_name, kind)
);

CREATE TABLE members (
    name        TEXT    NOT NULL PRIMARY KEY,
    started     BIGINT  NOT NULL,
    seen        BIGINT  NOT NULL,
    interval_ms BIGINT  NOT NULL,
    version     TEXT    NOT NULL,
    silent      INTEGER NOT NULL
);

CREATE TABLE meta (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE meta;
DROP TABLE members;
DROP TABLE warnings;
DROP TABLE history;
DROP TABLE outbox;
DROP TABLE incidents;
DROP TABLE series;
