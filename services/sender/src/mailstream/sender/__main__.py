from mailstream.sender.main import run

run()
