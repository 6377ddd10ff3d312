from mailstream.gateway.fanout.main import run

run()
