// Small progressive enhancements for the server-rendered pages. Every page works without this
// script; it only makes times local, adds copy buttons, confirmations, auto-submitting selects
// and a progress state on forms that take a moment.

const FORMAT_OPTIONS = { dateStyle: "medium", timeStyle: "short" };

function makeFormatter() {
  const lang = document.documentElement.lang || undefined;
  try {
    return new Intl.DateTimeFormat(lang, FORMAT_OPTIONS);
  } catch {
    // An unknown or unsupported language tag: fall back to the browser's own locale.
    return new Intl.DateTimeFormat(undefined, FORMAT_OPTIONS);
  }
}

function zoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

/** `<time data-utc="2025-01-31T09:00:00Z">` becomes the date and time in the browser's zone. */
function localiseTimes(root = document) {
  const elements = root.querySelectorAll("time[data-utc]");
  if (!elements.length) return;
  const formatter = makeFormatter();
  const zone = zoneName();
  for (const el of elements) {
    const date = new Date(el.getAttribute("data-utc"));
    if (Number.isNaN(date.getTime())) continue;
    if (!el.hasAttribute("datetime")) el.setAttribute("datetime", date.toISOString());
    el.textContent = formatter.format(date);
    if (zone) el.title = zone;
  }
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP pages have no async clipboard: use a hidden textarea and execCommand.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try {
    if (!document.execCommand("copy")) throw new Error("copy refused");
  } finally {
    area.remove();
  }
}

/** `<button data-copy="target-id" data-copied="Copied">` copies the target's value or text. */
function onCopyClick(button) {
  const target = document.getElementById(button.getAttribute("data-copy"));
  if (!target) return;
  const text = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
    ? target.value
    : target.textContent;
  writeClipboard(text ?? "").then(
    () => {
      const copied = button.getAttribute("data-copied");
      if (!copied) return;
      if (button.dataset.copyOriginal === undefined) {
        button.dataset.copyOriginal = button.textContent;
      }
      button.textContent = copied;
      clearTimeout(Number(button.dataset.copyTimer) || 0);
      button.dataset.copyTimer = String(
        setTimeout(() => {
          button.textContent = button.dataset.copyOriginal;
          delete button.dataset.copyOriginal;
          delete button.dataset.copyTimer;
        }, 2000),
      );
    },
    () => {
      // Clipboard refused: select the text so the user can copy it by hand.
      if (typeof target.select === "function") target.select();
    },
  );
}

// --- forms that take a moment (signing, checking a PDF): a visible, announced progress state ---

const busyButtons = new WeakMap(); // button -> its content before

function submitButtons(form) {
  return [...form.elements].filter((el) => (el instanceof HTMLButtonElement && el.type === "submit")
    || (el instanceof HTMLInputElement && el.type === "submit"));
}

/** The form and its submit buttons say they are busy: aria-busy, a spinner and the form's
 *  data-busy text on the button pressed, the buttons disabled, the text announced. */
function markBusy(form, submitter) {
  const text = form.getAttribute("data-busy") || "";
  form.setAttribute("aria-busy", "true");
  const buttons = submitButtons(form);
  const pressed = submitter && buttons.includes(submitter) ? submitter : buttons[0];
  for (const button of buttons) {
    button.setAttribute("aria-disabled", "true");
    if (button === pressed) {
      button.setAttribute("aria-busy", "true");
      if (button instanceof HTMLButtonElement) {
        busyButtons.set(button, [...button.childNodes]);
        const spinner = document.createElement("span");
        spinner.className = "busy-spinner";
        spinner.setAttribute("aria-hidden", "true");
        const label = document.createElement("span");
        label.textContent = text;
        button.replaceChildren(spinner, label);
      }
    }
  }
  let status = form.querySelector(":scope > .busy-status");
  if (!status) {
    status = document.createElement("span");
    status.className = "busy-status visually-hidden";
    status.setAttribute("role", "status");
    form.append(status);
  }
  status.textContent = text;
  // Disabled only after the browser has read the form: a disabled submitter is left out of it.
  setTimeout(() => {
    if (form.getAttribute("aria-busy") !== "true") return;
    for (const button of buttons) button.disabled = true;
  }, 0);
}

function clearBusy(form) {
  form.removeAttribute("aria-busy");
  for (const button of submitButtons(form)) {
    button.disabled = false;
    button.removeAttribute("aria-disabled");
    button.removeAttribute("aria-busy");
    const before = busyButtons.get(button);
    if (before) {
      button.replaceChildren(...before);
      busyButtons.delete(button);
    }
  }
  const status = form.querySelector(":scope > .busy-status");
  if (status) status.textContent = "";
}

function onBusySubmit(event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-busy")) return;
  if (event.defaultPrevented) return;
  if (form.getAttribute("aria-busy") === "true") {
    event.preventDefault(); // already sent: a second tap must not send it twice
    return;
  }
  markBusy(form, event.submitter);
}

function init() {
  localiseTimes();

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    event.preventDefault();
    onCopyClick(button);
  });

  // `<form data-confirm="Really withdraw?">` asks before submitting.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (!window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // `<form data-busy="Signing…">` shows that it is working once sent (see markBusy).
  document.addEventListener("submit", onBusySubmit);
  // Back to this page (from the browser's back-forward cache): its buttons work again.
  window.addEventListener("pageshow", () => {
    for (const form of document.querySelectorAll("form[data-busy][aria-busy='true']")) clearBusy(form);
  });

  // `<select data-autosubmit>` submits its form on change (e.g. the language switcher).
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.hasAttribute("data-autosubmit")) return;
    const form = select.form;
    if (!form) return;
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", init);
} else {
  init();
}

/** `<input data-browser-timezone>` carries the browser's time zone (e.g. at sign-up). */
function fillTimezones(root = document) {
  const zone = zoneName();
  if (!zone) return;
  for (const el of root.querySelectorAll("input[data-browser-timezone]")) {
    if (!el.value) el.value = zone;
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", () => fillTimezones());
} else {
  fillTimezones();
}
