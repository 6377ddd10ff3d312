-- Owned by the gateway (issue 22): SendGrid's scheduled-send batches (docs/sendgrid.md#batches).
-- A batch id is made by POST /v3/mail/batch; a Mail Send with batch_id and send_at stores it with
-- each of its scheduled sends. status is the batch's pause or cancel (NULL: none), read by the
-- scheduler when a send of the batch falls due.
CREATE TABLE sendgrid_batches (
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    batch_id    text NOT NULL,
    status      text CHECK (status IN ('pause', 'cancel')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, batch_id)
);
CREATE INDEX sendgrid_batches_with_status ON sendgrid_batches (account_id, updated_at) WHERE status IS NOT NULL;

-- paused: the send's batch is paused (kept equal to it under the batch row's lock: a status change
-- locks the row FOR UPDATE, an accepted send FOR SHARE). Paused sends are not due; the scheduler
-- cancels those 72 h past their send_at, as SendGrid discards them (Expired).
ALTER TABLE scheduled_sends ADD COLUMN batch_id text;
ALTER TABLE scheduled_sends ADD COLUMN paused boolean NOT NULL DEFAULT false;
CREATE INDEX scheduled_sends_batch ON scheduled_sends (account_id, batch_id)
    WHERE batch_id IS NOT NULL AND released_at IS NULL AND canceled_at IS NULL;
DROP INDEX scheduled_sends_due;
CREATE INDEX scheduled_sends_due ON scheduled_sends (send_at)
    WHERE released_at IS NULL AND canceled_at IS NULL AND NOT paused;
CREATE INDEX scheduled_sends_paused ON scheduled_sends (send_at)
    WHERE released_at IS NULL AND canceled_at IS NULL AND paused;
