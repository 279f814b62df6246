"""Real browsers and a real server for the members' page tests: Debian's headless Chromium driven
by Selenium, and the aiohttp app of adapters/web started on 127.0.0.1 for a console Room's core.

Selenium blocks, and the server runs on the test's own event loop, so every browser call goes
through `Browser`, which runs it on a thread."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from bot import transparency
from bot.app import web_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--window-size=1280,900")


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium with a fresh profile, removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="commons-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """The driver's calls, each on a thread (the server under test answers on this loop)."""

    def __init__(self, driver) -> None:
        self.driver = driver

    async def call(self, function, *args):
        return await asyncio.to_thread(function, *args)

    async def viewport(self, width: int, height: int, mobile: bool) -> None:
        """Emulate a screen exactly (a window can't be made 360 px wide on every platform)."""
        await self.call(self.driver.execute_cdp_cmd, "Emulation.setDeviceMetricsOverride",
                        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    async def open(self, url: str) -> None:
        """Load `url` and wait until the document is complete (opening the same address again, or
        after the emulated screen changed, can return while the new document is still empty)."""
        await self.call(self.driver.get, url)
        for _ in range(200):
            if await self.script("return document.readyState === 'complete' && document.body !== null "
                                 "&& document.body.children.length > 0"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the page did not finish loading: {url}")

    async def source(self) -> str:
        """The document as the browser holds it (markup members typed arrives as text, escaped)."""
        return await self.script("return document.documentElement.outerHTML")

    async def script(self, code: str, *args):
        return await self.call(self.driver.execute_script, code, *args)

    async def text_of(self, selector: str) -> str:
        from selenium.webdriver.common.by import By

        return await self.call(lambda: self.driver.find_element(By.CSS_SELECTOR, selector).text)

    async def texts_of(self, selector: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return await self.call(lambda: [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, selector)])

    async def count(self, selector: str) -> int:
        from selenium.webdriver.common.by import By

        return await self.call(lambda: len(self.driver.find_elements(By.CSS_SELECTOR, selector)))

    async def screenshot(self, name: str, full_page: bool = True) -> Path:
        """Saved to tests/artifacts/; the whole page (the viewport stretched to its height) unless told."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        if full_page:
            width = await self.script("return window.innerWidth")
            height = await self.script("return document.documentElement.scrollHeight")
            mobile = width < 600
            await self.viewport(width, min(height, 16000), mobile)
            await self.call(self.driver.save_screenshot, str(path))
            await self.viewport(width, 800 if mobile else 900, mobile)
        else:
            await self.call(self.driver.save_screenshot, str(path))
        return path


@asynccontextmanager
async def serving(core, requests_per_minute: int = 100_000) -> AsyncIterator[object]:
    """The members' pages for `core` on 127.0.0.1 (an ephemeral port), with `link` and `calendar`
    giving addresses on it; the server and the address are gone afterwards."""
    server = web_server(core, "127.0.0.1", 0, requests_per_minute=requests_per_minute)
    await server.start()
    transparency.configure(f"http://127.0.0.1:{server.port}")
    try:
        yield server
    finally:
        transparency.configure(None)
        await server.stop()
