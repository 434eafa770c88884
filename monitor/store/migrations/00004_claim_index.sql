-- A sender claims the message of its notifier that has been due the
-- longest. outbox_claim hands it out by walking one target's messages in
-- the order they fall due, stopping at the first whose incident has no
-- message before it (outbox_incident_target answers that). A claim moves
-- next_try to the end of its lease, so a claimed message is not due
-- again until its lease runs out. Before this, every claim read and sorted
-- every due message: draining a backlog of n took n², and 2,000 incidents
-- after a Slack outage stalled a busy machine.

-- +goose Up
CREATE INDEX outbox_claim ON outbox (target, next_try, seq);
CREATE INDEX outbox_incident_target ON outbox (incident, target, seq);
DROP INDEX outbox_by_incident;
DROP INDEX outbox_due;
UPDATE outbox SET next_try = lease_until WHERE lease_until > next_try;

-- +goose Down
CREATE INDEX outbox_due ON outbox (next_try, seq);
CREATE INDEX outbox_by_incident ON outbox (incident, seq);
DROP INDEX outbox_incident_target;
DROP INDEX outbox_claim;
