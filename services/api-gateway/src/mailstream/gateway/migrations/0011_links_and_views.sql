-- An email version's static click targets (absolute http(s) hrefs its HTML names literally, in
-- order of first appearance; mailstream.schemas.links.static_links). Immutable like the version:
-- a tracking link carries an index into this list instead of the URL. NULL for versions saved
-- before the list existed (their links carry the URL).
ALTER TABLE email_versions ADD COLUMN links text[];

-- What other services read of the gateway's tables: these views are the interface; the tables
-- behind them may change as long as the views keep their columns.

-- The renderer: an email version to render, with its account.
CREATE VIEW render_email_versions AS
    SELECT e.account_id, v.email_id, v.version, v.subject, v.from_name, v.from_email, v.reply_to, v.html,
           v.text_body, v.subscription_type, v.tracking, v.links
    FROM email_versions v JOIN emails e ON e.id = v.email_id;

-- The renderer: a contact's properties and the statuses the MARKETING rules read.
CREATE VIEW contact_statuses AS
    SELECT account_id, email, properties, subscription_status, quarantined, double_opt_in, bounced, spam_reported
    FROM contacts;

-- The tracker: an email version's static click targets, to resolve an indexed click link.
CREATE VIEW email_version_links AS
    SELECT e.account_id, v.email_id, v.version, v.links
    FROM email_versions v JOIN emails e ON e.id = v.email_id;

-- The sender: the DKIM key of each verified sending domain.
CREATE VIEW dkim_signing_keys AS
    SELECT account_id, domain, dkim_selector, dkim_private_key
    FROM sending_domains WHERE verified_at IS NOT NULL;
