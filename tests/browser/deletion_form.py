#!/usr/bin/env python3
"""A person asks for the deletion of their data in a real browser (POLICY E15, issue 5).

    .venv/bin/python tests/browser/deletion_form.py <base_url> <email> [screenshot_dir]

Headless Chromium (Debian's `chromium` package, installed by infra/scripts/chromium.sh, launched
by its path; Playwright's own browser download is never used) with JavaScript turned off, as the
form must work without it: opens `<base_url>/data-deletion`, fills in the address, submits, reads
the confirmation link from the e-mails the local stack caught (`<base_url>/_local/emails`), opens
it, and prints the final page as JSON: `{"url", "text", "sent_text"}`. With a screenshot_dir it
also saves a PNG of each page there. Exits non-zero, saying why, when a step fails.
"""

import json
import re
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
LINK = re.compile(r"https?://\S+/data-deletion/confirm\?token=[A-Za-z0-9_.\-]+")
STEP_TIMEOUT_MS = 20_000


def confirmation_link(base_url: str, email: str, timeout_s: float = 20.0) -> str:
    """The link of the newest e-mail to `email`, waiting for it to arrive."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(f"{base_url}/_local/emails", timeout=10) as res:
            emails = json.load(res)["emails"]
        for mail in reversed(emails):  # newest last
            if email in (mail.get("to") or []):
                found = LINK.search(mail.get("body") or "")
                if found:
                    return found.group(0)
        if time.monotonic() > deadline:
            sys.exit(f"deletion_form.py: no confirmation e-mail reached {email}")
        time.sleep(0.2)


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    base_url, email = sys.argv[1].rstrip("/"), sys.argv[2]
    shots = sys.argv[3] if len(sys.argv) == 4 else None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(java_script_enabled=False)
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{base_url}/data-deletion")
            if shots:
                page.screenshot(path=f"{shots}/1-form.png", full_page=True)
            page.get_by_label("E-mail address").fill(email)
            with page.expect_navigation():
                page.get_by_role("button", name="Send me the confirmation link").click()
            sent_text = page.inner_text("main")
            if shots:
                page.screenshot(path=f"{shots}/2-sent.png", full_page=True)
            page.goto(confirmation_link(base_url, email))
            page.wait_for_url(re.compile(r".*/data-deletion/status/.*"))
            if shots:
                page.screenshot(path=f"{shots}/3-status.png", full_page=True)
            print(json.dumps({"url": page.url, "text": page.inner_text("main"), "sent_text": sent_text}))
        finally:
            browser.close()


if __name__ == "__main__":
    main()
