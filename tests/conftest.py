pytest_plugins = ["nomad_standin.pytest_plugin"]
