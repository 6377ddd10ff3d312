from mailstream.renderer.main import run

run()
