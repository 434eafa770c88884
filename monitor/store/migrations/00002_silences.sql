-- Silences: set at run time (the silence command, a Slack button), kept in
-- the store so that every member of a fleet honours them.

-- +goose Up
CREATE TABLE silences (
    id         TEXT    NOT NULL PRIMARY KEY,
    check_name TEXT    NOT NULL,
    vantage    TEXT    NOT NULL,
    starts     BIGINT  NOT NULL,
    ends       BIGINT  NOT NULL,
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created    BIGINT  NOT NULL
);
CREATE INDEX silences_by_check ON silences (check_name, ends);

-- +goose Down
DROP TABLE silences;
