-- Notifiers beside Slack: every outbox entry has a target, "" for the
-- primary notifier (Slack, or the console). Messages of one incident go in
-- order per target, so a Slack outage does not hold PagerDuty back.

-- +goose Up
ALTER TABLE outbox ADD COLUMN target TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE outbox DROP COLUMN target;
