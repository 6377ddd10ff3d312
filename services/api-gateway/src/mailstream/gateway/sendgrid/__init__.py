"""SendGrid's v3 Mail Send API (`POST /v3/mail/send`) on mailstream's accept path: the request
(request.py), the messages it makes (message.py), its sends (mapping.py) and its error shape
(errors.py); batches of scheduled sends to pause or cancel (batches.py). docs/sendgrid.md says
what is supported."""
