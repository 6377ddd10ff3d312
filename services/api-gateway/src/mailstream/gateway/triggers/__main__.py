from mailstream.gateway.triggers.main import run

run()
