"""Browser test of dashboard/'s EN/ES toggle: every label a user can meet switches (DOM,
accessible-name attributes, the title and the text drawn on the canvases), and the
choice is remembered. Fixtures in conftest.py.
"""

from __future__ import annotations

import re

import dashboard_seed as seed
from dashboard_support import (
    LIVE,
    PageProblems,
    TcpProxy,
    after_next_frame,
    feed_row,
    open_dashboard,
)
from playwright.sync_api import Page

# Every piece of text a user can meet except data from the backend (the feed's reasons,
# written by the detector): text nodes, accessible-name attributes, the title, and the
# strings drawn on each canvas (recorded by charts.js as canvas.drawnText).
VISIBLE_TEXT_JS = """() => {
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest('td.reason, script, style')) out.push(n.textContent);
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder]')) {
    for (const a of ['aria-label', 'title', 'placeholder']) {
      if (el.hasAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  for (const c of document.querySelectorAll('canvas')) out.push(...(c.drawnText || []));
  return out.join('\\n');
}"""


def label_pattern(label: str) -> re.Pattern[str]:
    """A label as a regex: placeholders match anything, whole words only."""
    parts = [re.escape(p) for p in re.split(r"\{\w+\}", label)]
    return re.compile(r"(?<!\w)" + ".*?".join(parts) + r"(?!\w)")


def leftover_labels(text: str, strings: dict[str, dict[str, str]], shown: str) -> list[str]:
    """Labels of the other language (where the two differ) still present in `text`."""
    other = "en" if shown == "es" else "es"
    return [
        f"{key}: {strings[other][key]!r}"
        for key in strings[other]
        if strings[other][key] != strings[shown][key]
        and label_pattern(strings[other][key]).search(text)
    ]


def test_language_toggle_switches_every_label_and_is_remembered(
    page: Page, proxy: TcpProxy, seeded: seed.Seed, problems: PageProblems
) -> None:
    open_dashboard(page, proxy)
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))
    strings: dict[str, dict[str, str]] = page.evaluate("import('/js/i18n.js').then(m => m.STRINGS)")
    assert set(strings["en"]) == set(strings["es"]), "EN and ES must have the same keys"
    assert leftover_labels(page.evaluate(VISIBLE_TEXT_JS), strings, "en") == []

    page.click("#lang button[data-lang='es']")
    page.wait_for_function("document.documentElement.lang === 'es'")
    after_next_frame(page)  # charts repaint on the next animation frame
    text = page.evaluate(VISIBLE_TEXT_JS)
    assert leftover_labels(text, strings, "es") == []
    for key in ("smileTitle", "feedTitle", "gexTitle", "flowTitle", "connLive", "smileY", "strike"):
        assert strings["es"][key] in text, key
    assert page.title() == strings["es"]["title"]
    assert "Residuo de VI" in page.inner_text("#feed-body")
    assert page.inner_text("#spot") == "600,12"  # Spanish number format

    page.reload()  # remembered in localStorage
    page.wait_for_selector(LIVE)
    page.wait_for_selector(feed_row(page, seeded.anomalies[0]["id"]))
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.get_attribute("#lang button[data-lang='es']", "aria-pressed") == "true"
    assert leftover_labels(page.evaluate(VISIBLE_TEXT_JS), strings, "es") == []

    page.click("#lang button[data-lang='en']")
    page.wait_for_function("document.documentElement.lang === 'en'")
    after_next_frame(page)
    assert leftover_labels(page.evaluate(VISIBLE_TEXT_JS), strings, "en") == []
    assert problems.all() == []
