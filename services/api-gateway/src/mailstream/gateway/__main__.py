from mailstream.gateway.main import run

run()
