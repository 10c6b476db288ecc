"""The Space in a real browser: Playwright driving Debian's Chromium, headless, against the app on
localhost (the tiny model). Types a review and reads the label; clicks an example and reads its label;
uploads a CSV and reads the preview table and the download link; checks that a bad input shows its message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from screenshot import CHROMIUM_ARGS  # space/ is on sys.path (tests/space_fixtures.py)

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is not installed (/usr/bin/chromium): `apt-get install chromium`",
)


@pytest.fixture(scope="module")
def page(space_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(space_url)
        page.get_by_role("button", name="Classify", exact=True).wait_for()
        yield page
        context.close()
        browser.close()


def classify(page, text: str) -> None:
    page.get_by_role("tab", name="Review").click()
    page.locator("#review textarea").fill(text)
    page.get_by_role("button", name="Classify", exact=True).click()


def test_type_a_review_and_read_the_label(page) -> None:
    classify(page, "A moving, beautifully acted film with a wonderful score.")
    page.locator("#prediction-note").get_by_text("tokens, read in one pass").wait_for()
    label = page.locator("#prediction [data-testid=label-output-value]")
    assert label.inner_text().strip() in {"POSITIVE", "NEGATIVE"}
    # Both probabilities are listed under the label.
    bars = page.locator("#prediction .confidence-set")
    assert bars.count() == 2 and {"POSITIVE", "NEGATIVE"} <= set(" ".join(bars.all_inner_texts()).split())
    # The explanation arrives after the label: the review's words, as highlighted spans.
    page.locator("#why-text").get_by_text("Each span was deleted in turn").wait_for()
    assert "beautifully" in page.locator("#why").inner_text()


def test_one_click_on_an_example_shows_its_label(page) -> None:
    """No Classify press: the example's click fills the box and classifies it. The tiny model's folder has
    no results.json, so a short review's note says only what the model was trained on."""
    page.reload()
    page.get_by_role("tab", name="Review").click()
    label = page.locator("#prediction [data-testid=label-output-value]")
    assert label.count() == 0
    page.get_by_role("button", name="Very short").click()
    label.wait_for()
    assert label.inner_text().strip() in {"POSITIVE", "NEGATIVE"}
    assert page.locator("#review textarea").input_value() == "Meh."
    note = page.locator("#prediction-note")
    note.get_by_text("Short review.").wait_for()
    assert "The model was trained on full movie reviews." in note.inner_text()
    page.locator("#why-text").get_by_text("Each span was deleted in turn").wait_for()


def test_a_long_example_says_it_was_split(page) -> None:
    page.get_by_role("tab", name="Review").click()
    page.get_by_role("button", name="Very long (split into windows)").click()
    note = page.locator("#prediction-note")
    note.get_by_text(re.compile(r"Long review: split into \d windows")).wait_for()
    assert "Short review" not in note.inner_text()


def test_empty_review_shows_one_clear_message(page) -> None:
    classify(page, "   ")
    page.get_by_text("The review is empty: type or paste a movie review first.").first.wait_for()


def test_upload_a_csv_and_read_the_table_and_download_link(page, tmp_path: Path, sample_dir: Path) -> None:
    reviews = pd.read_parquet(sample_dir / "test.parquet").head(12)
    path = tmp_path / "my_reviews.csv"
    reviews.rename(columns={"text": "review"}).to_csv(path, index=False)

    page.get_by_role("tab", name="File upload").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Classify file").click()

    page.locator("#file-summary").get_by_text("12 reviews classified").wait_for()
    table = page.locator("#preview")
    headers = table.locator("[role=columnheader]").all_inner_texts()
    assert [h.strip() for h in headers] == ["review", "predicted_label", "score", "windows"]
    labels = [table.get_by_test_id(f"cell-{row}-1").inner_text().strip() for row in range(12)]
    assert set(labels) <= {"POSITIVE", "NEGATIVE"}

    link = page.locator("#download a[data-testid=download-link]")
    assert link.get_attribute("download") == "predictions_my_reviews.csv"
    with page.expect_download() as download_info:
        link.click()
    saved = tmp_path / "downloaded.csv"
    download_info.value.save_as(saved)
    downloaded = pd.read_csv(saved)
    assert downloaded["predicted_label"].tolist() == labels
    assert downloaded["review"].tolist() == reviews["text"].tolist()
