from mailstream.gateway.webhooks.main import run

run()
