-- Groups (README, "Groups"): the key an incident shares with the others of
-- its group (group.by, the channel), so the incidents that may form a
-- group are found without reading every open one ('' for an incident never
-- grouped); and a group's members, one row each, so a member joining or
-- recovering writes its own row, not the whole group.

-- +goose Up
ALTER TABLE incidents ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
CREATE INDEX incidents_group_key ON incidents (group_key, state, opened);
CREATE TABLE group_members (
    group_id   TEXT    NOT NULL,
    incident   TEXT    NOT NULL,
    check_name TEXT    NOT NULL,
    open       INTEGER NOT NULL,
    failing    TEXT    NOT NULL,
    member_key TEXT    NOT NULL,
    pop        TEXT    NOT NULL,
    away       BIGINT  NOT NULL,
    joined     BIGINT  NOT NULL,
    PRIMARY KEY (group_id, incident)
);
CREATE INDEX group_members_key ON group_members (group_id, open, member_key);

-- +goose Down
DROP TABLE group_members;
DROP INDEX incidents_group_key;
ALTER TABLE incidents DROP COLUMN group_key;
