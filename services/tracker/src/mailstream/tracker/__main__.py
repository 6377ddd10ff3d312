from mailstream.tracker.main import run

run()
