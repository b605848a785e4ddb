# Scenario files as pytest items; everything lives in the plugin.
pytest_plugins = ["harness.drive.pytest_plugin"]
