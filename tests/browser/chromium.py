"""Headless Chromium for tests: Debian's ``chromium`` and ``chromedriver`` through Selenium, nothing downloaded.

Skips with the command that installs them when they are missing (``make test`` and CI install them).
"""

import contextlib
import shutil
from collections.abc import Iterator

import pytest

INSTALL = "apt-get install -y chromium chromium-driver (make install does it) and pip install -e '.[serve]'"


@contextlib.contextmanager
def chromium(fake_microphone: bool = False) -> Iterator:
    """A headless Chromium that may autoplay sound; ``fake_microphone``: getUserMedia gets Chromium's test beep."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(f"needs Chromium and its driver: {INSTALL}")
    webdriver = pytest.importorskip("selenium.webdriver", reason=f"needs selenium: {INSTALL}")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1100,820"):
        options.add_argument(flag)
    if fake_microphone:
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument("--use-fake-ui-for-media-stream")
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()
