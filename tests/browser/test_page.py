"""The page in a real browser: headless Chromium (Debian's, driven through its chromedriver; nothing is downloaded)
uploads a portrait and speech, plays the video while clips arrive, and offers an mp4 as long as the audio; and
streams from its (fake) microphone."""

import time

import httpx
import numpy as np
import pytest

from readlit.data.video_io import read_mp4
from tests.browser.chromium import chromium
from tests.serve.server import Server, make_service, tiny_checkpoint, write_inputs

SECONDS = 6.0


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    service = make_service(tiny_checkpoint(tmp_path_factory), root)
    with Server(service) as running:
        yield running


def test_the_page_plays_the_video_as_it_streams_and_offers_the_mp4(server, tmp_path):
    inputs = write_inputs(tmp_path, seconds=SECONDS)
    with chromium() as browser:
        browser.get(server.url)
        wait_for(lambda: browser.execute_script("return document.getElementById('steps').value") == "2", 30,
                 "the sampler defaults from /v1/health")
        browser.find_element("id", "image").send_keys(str(inputs["image"]))
        browser.find_element("id", "audio").send_keys(str(inputs["audio"]))
        browser.find_element("id", "generate").click()
        wait_for(lambda: browser.execute_script("return document.getElementById('player').currentTime") > 0, 120,
                 "playback to start")
        first = browser.execute_script("return document.getElementById('player').currentTime")
        browser.save_screenshot(str(tmp_path / "page_mid_stream.png"))
        wait_for(lambda: browser.execute_script("return document.getElementById('player').currentTime") > first + 0.2,
                 30, "the video to advance")
        link = wait_for(lambda: browser.execute_script(
            "const a = document.getElementById('download'); return a.hidden ? null : a.href"), 180, "the mp4 link")
        assert browser.find_element("id", "error").text == ""
        assert browser.execute_script("return document.getElementById('progress').value") == 1
        played = browser.execute_script("return document.getElementById('player').duration")
    assert (tmp_path / "page_mid_stream.png").stat().st_size > 1000
    assert abs(played - SECONDS) < 0.1  # the stream the browser played lasts as long as the audio
    (tmp_path / "video.mp4").write_bytes(httpx.get(link, timeout=30).content)
    frames, fps, audio, rate = read_mp4(tmp_path / "video.mp4")
    assert abs(len(frames) / fps - SECONDS) < 1 / fps and abs(len(audio) / rate - SECONDS) < 1 / fps


def test_the_page_streams_from_the_microphone(server, tmp_path):
    """Chromium's fake microphone (a beep) speaks; clips play while it does; stopping ends the video cleanly."""
    inputs = write_inputs(tmp_path, seconds=1.0)
    with chromium(fake_microphone=True) as browser:
        browser.get(server.url)
        wait_for(lambda: browser.execute_script("return document.getElementById('steps').value") == "2", 30,
                 "the sampler defaults from /v1/health")
        browser.find_element("id", "image").send_keys(str(inputs["image"]))
        browser.find_element("id", "record").click()
        wait_for(lambda: browser.execute_script("return document.getElementById('player').currentTime") > 0, 120,
                 "playback of the first live clips")
        time.sleep(1.0)
        browser.find_element("id", "cancel").click()  # "Stop recording": the audio ends, the last clips follow
        link = wait_for(lambda: browser.execute_script(
            "const a = document.getElementById('download'); return a.hidden ? null : a.href"), 180, "the mp4 link")
        assert browser.find_element("id", "error").text == ""
    (tmp_path / "live.mp4").write_bytes(httpx.get(link, timeout=30).content)
    frames, fps, audio, rate = read_mp4(tmp_path / "live.mp4")
    assert len(frames) > 25 and abs(len(frames) / fps - len(audio) / rate) < 1024 / rate + 1 / fps
    assert np.abs(audio).max() > 0.01  # the microphone's beep is in the video's sound track
