"""Helpers for the browser tests at phone size: a phone's browser context, the page's
horizontal overflow, and requests held back by the browser to catch a page's busy state."""

from __future__ import annotations

import time
from typing import Any

PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "device_scale_factor": 3,
}


def phone_context(browser: Any, locale: str = "ru-RU") -> Any:
    return browser.new_context(locale=locale, **PHONE)


def assert_no_horizontal_overflow(page: Any) -> None:
    """Nothing on the page is wider than the screen (the page never scrolls sideways)."""
    width, inner, wide = page.evaluate("""() => {
        const inner = window.innerWidth;
        const wide = [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > inner + 1 && !e.closest(".table-wrap"))
          .slice(0, 5).map((e) => `${e.tagName}.${e.className}#${e.id}`);
        return [document.scrollingElement.scrollWidth, inner, wide];
    }""")
    assert width <= inner, f"{page.url}: the page is {width}px wide on a {inner}px screen: {wide}"


class Held:
    """Requests matching ``pattern`` with ``method`` are held in the browser until released:
    the page waits for its answer exactly as it would for a slow server. While a form's
    navigation is held Playwright evaluates nothing in the page: send such forms with
    ``no_wait_after=True`` and look at them with BusyWatch."""

    def __init__(self, page: Any, pattern: str, method: str = "POST") -> None:
        self.page = page
        self.pattern = pattern
        self.method = method
        self.routes: list[Any] = []
        page.route(pattern, self._on_route)

    def _on_route(self, route: Any) -> None:
        if route.request.method == self.method:
            self.routes.append(route)
        else:
            route.continue_()

    def release(self, timeout: float = 15.0) -> None:
        """Let the held requests go on (waiting until one was held), and stop holding."""
        deadline = time.monotonic() + timeout
        while not self.routes:
            assert time.monotonic() < deadline, f"no {self.method} request to {self.pattern}"
            self.page.wait_for_timeout(50)  # lets Playwright hand over the route event
        for route in self.routes:
            route.continue_()
        self.page.unroute(self.pattern, self._on_route)


# Installed before a form is sent: reports (through an exposed function, as a page running
# a navigation answers no evaluation) the first moment the form and its button show they are
# busy, with what the button then says.
OBSERVE_BUSY = """(selector) => {
  const form = document.querySelector(selector);
  const report = () => {
    const button = form.querySelector("[aria-busy='true']");
    if (form.getAttribute("aria-busy") !== "true" || !button || !button.disabled) return false;
    const spinner = button.querySelector(".busy-spinner");
    const status = form.querySelector("[role=status]");
    window.odrBusySeen({
      text: button.textContent.trim(),
      disabled: button.disabled,
      spinner: Boolean(spinner) && getComputedStyle(spinner).display !== "none",
      status: status ? status.textContent : "",
    });
    return true;
  };
  const observer = new MutationObserver(() => { if (report()) observer.disconnect(); });
  observer.observe(form, { attributes: true, childList: true, subtree: true });
}"""


class BusyWatch:
    """What a form looked like while its request was on its way (see OBSERVE_BUSY)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.seen: list[dict[str, Any]] = []
        page.expose_function("odrBusySeen", self._seen)

    def _seen(self, snapshot: dict[str, Any]) -> None:
        self.seen.append(snapshot)

    def arm(self, form_selector: str) -> None:
        self.seen.clear()
        self.page.evaluate(OBSERVE_BUSY, form_selector)

    def wait(self, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.seen:
            assert time.monotonic() < deadline, "the form never showed that it was busy"
            self.page.wait_for_timeout(50)
        return self.seen[0]
