"""The headless Chromium that the browser tests share: Debian's, never one Playwright downloads."""

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "no Chromium on this machine (apt-get install chromium)"
# no GPU, no sandbox (containers), nothing fetched in the background
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
