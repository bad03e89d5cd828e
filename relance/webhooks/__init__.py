"""Provider feedback: a small web service that receives what SendGrid and Twilio report about relance's messages.

* :mod:`relance.webhooks.sendgrid` verifies a signed Event Webhook batch (ECDSA P-256 over the timestamp and the
  raw body, stale timestamps refused) and maps its events to ``raw.message_events`` rows;
* :mod:`relance.webhooks.twilio` verifies ``X-Twilio-Signature`` and maps status callbacks and inbound opt-outs
  (``STOP``); it also builds the ``StatusCallback`` URL the SMS transport gives Twilio;
* :mod:`relance.webhooks.load` keeps every verified request in a durable inbox first, then lands the rows through
  the shared loader (``relance.ingest.load_extracts``), validates them with the ``raw_message_events`` data
  contract and applies their consequences once: suppressions, and send-ledger rows settled as sent;
* :mod:`relance.webhooks.app` is the FastAPI application (``create_app``), :mod:`relance.webhooks.cli` the
  ``relance webhooks`` commands (``serve``, ``drain``).
"""
