pytest_plugins = ["dev.standin.pytest_plugin"]
