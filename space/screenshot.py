"""Take the README's screenshot: the Space on a model, one review classified and explained.

    python space/screenshot.py --model runs/demo [--out space/screenshot.png]

Launches the app on localhost and drives Debian's Chromium with Playwright (headless). Not
uploaded with the Space (`python -m model_card deploy-space` leaves it out).
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import app
from sentiment import SentimentModel

REVIEW = (
    "Brilliant acting and a gorgeous score, but the plot is a boring mess and the last hour is "
    "painfully slow. I wanted to love it."
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="MODEL_ID to serve: a local folder or Hub id")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screenshot.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    demo = app.build_app(SentimentModel(args.model))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.locator("#review textarea").fill(REVIEW)
        page.get_by_role("button", name="Classify", exact=True).click()
        page.locator("#why-text").get_by_text("Each span was deleted in turn").wait_for()
        height = (
            page.locator("#why-text").bounding_box()["y"] + page.locator("#why-text").bounding_box()["height"]
        )
        page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1100, "height": height + 16})
        browser.close()
    demo.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
