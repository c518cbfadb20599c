"""End-to-end tests: the real window on a real (virtual) display."""


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: runs the real main window under Xvfb (skips without Xvfb)")
