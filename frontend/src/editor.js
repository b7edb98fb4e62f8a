// The agreement draft editor: Tiptap over a Yjs document shared through the y-websocket protocol
// at /ws/drafts/{id}, with collaborators' carets, approvals, freezing and a diff between versions.
//
// The page (templates/draft.html) passes everything in <script id="draft-config"> as JSON:
// the draft id, the WebSocket address, what this person may do, their name and colour, and the
// translated UI strings. Every text put into the page here goes through textContent.

import { Editor, Extension } from "@tiptap/core";
import Collaboration, { isChangeOrigin } from "@tiptap/extension-collaboration";
import CollaborationCaret from "@tiptap/extension-collaboration-caret";
import { Plugin, PluginKey } from "@tiptap/pm/state";
import StarterKit from "@tiptap/starter-kit";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";

const POLL_MS = 5000;
const REFRESH_AFTER_EDIT_MS = 1200;

const $ = (id) => document.getElementById(id);

function readConfig() {
  const el = $("draft-config");
  if (!el) return null;
  try {
    return JSON.parse(el.textContent || "{}");
  } catch {
    return null;
  }
}

/** gettext-style "%(name)s" placeholders filled from `values`. */
function format(template, values = {}) {
  return String(template).replace(/%\((\w+)\)s/g, (m, key) => (key in values ? String(values[key]) : m));
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Black or white text, whichever reads better on the person's colour. */
function textColourOn(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || "");
  if (!m) return "#000";
  const n = parseInt(m[1], 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#000" : "#fff";
}

function safeColour(hex) {
  return /^#[0-9a-f]{6}$/i.test(hex || "") ? hex : "#1858b8";
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? "");
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      dateStyle: "medium", timeStyle: "short",
    }).format(date);
  } catch {
    return date.toLocaleString();
  }
}

class ApiError extends Error {}

async function api(url, { method = "GET" } = {}, s) {
  const init = { method, headers: { accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    // The session's form token, from the page (never a cookie: other ports could read it).
    const token = document.querySelector('meta[name="csrf-token"]');
    if (token) init.headers["x-csrf-token"] = token.content;
    init.headers["content-type"] = "application/json";
    init.body = "{}";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(s.network_error);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail;
    throw new ApiError(typeof detail === "string" && detail ? detail : s.error);
  }
  return body;
}

/**
 * Refuses every local change to the document while the editor is read-only. setEditable(false)
 * only stops typing; this also stops commands and plugins, so a reader never produces a Yjs
 * update (the server would refuse it anyway). Changes that come from Yjs always pass.
 */
function readOnlyGuard(isWritable) {
  return Extension.create({
    name: "readOnlyGuard",
    addProseMirrorPlugins() {
      return [new Plugin({
        key: new PluginKey("readOnlyGuard"),
        filterTransaction: (tr) => !tr.docChanged || isWritable() || isChangeOrigin(tr),
      })];
    },
  });
}

function renderCaret(user) {
  const colour = safeColour(user.color);
  const caret = el("span", { class: "collaboration-carets__caret" });
  caret.style.borderColor = colour;
  const label = el("span", { class: "collaboration-carets__label", text: user.name || "?" });
  label.style.backgroundColor = colour;
  label.style.color = textColourOn(colour);
  caret.append(label);
  return caret;
}

function renderSelection(user) {
  return {
    nodeName: "span",
    class: "collaboration-carets__selection",
    style: `background-color: ${safeColour(user.color)}33`,
    "data-user": user.name || "",
  };
}

// --- the toolbar --------------------------------------------------------------------------------

const TOOLS = [
  { key: "heading", run: (c) => c.toggleHeading({ level: 2 }), active: (e) => e.isActive("heading") },
  { key: "paragraph", run: (c) => c.setParagraph(), active: (e) => e.isActive("paragraph") },
  { key: "bold", run: (c) => c.toggleBold(), active: (e) => e.isActive("bold") },
  { key: "italic", run: (c) => c.toggleItalic(), active: (e) => e.isActive("italic") },
  { key: "orderedList", run: (c) => c.toggleOrderedList(), active: (e) => e.isActive("orderedList") },
  { key: "bulletList", run: (c) => c.toggleBulletList(), active: (e) => e.isActive("bulletList") },
  { key: "undo", run: (c) => c.undo() },
  { key: "redo", run: (c) => c.redo() },
];

/**
 * The formatting toolbar, after the WAI-ARIA toolbar pattern: one Tab stop (the last button
 * used), the arrow keys, Home and End move between the buttons, Enter and Space press them,
 * Escape goes back to the text; Alt+F10 in the text comes to the toolbar. A tap or click gives
 * the focus back to the text (where the virtual keyboard stays open); a key press keeps it on
 * the button, so several can be pressed in a row.
 */
function setupToolbar(editor, toolbar) {
  if (!toolbar) return () => {};
  const buttons = new Map();
  for (const button of toolbar.querySelectorAll("button[data-tool]")) {
    const tool = TOOLS.find((t) => t.key === button.dataset.tool);
    if (!tool) continue;
    buttons.set(button, tool);
    // mousedown would move the focus out of the editor and lose the selection.
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", (event) => {
      if (!editor.isEditable) return;
      setCurrent(button);
      const byKey = event.detail === 0; // Enter or Space, not a pointer
      const chain = byKey ? editor.chain() : editor.chain().focus();
      tool.run(chain).run();
    });
  }
  const list = () => [...buttons.keys()].filter((b) => !b.disabled);
  const setCurrent = (current) => {
    for (const button of buttons.keys()) button.tabIndex = button === current ? 0 : -1;
  };
  const move = (button) => {
    if (!button) return;
    setCurrent(button);
    button.focus();
    button.scrollIntoView({ block: "nearest", inline: "nearest" });
  };
  toolbar.addEventListener("keydown", (event) => {
    const all = list();
    const at = all.indexOf(document.activeElement);
    if (at < 0 || event.altKey || event.ctrlKey || event.metaKey) return;
    let target = null;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") target = all[(at + 1) % all.length];
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") target = all[(at - 1 + all.length) % all.length];
    else if (event.key === "Home") target = all[0];
    else if (event.key === "End") target = all[all.length - 1];
    else if (event.key === "Escape") {
      event.preventDefault();
      editor.commands.focus();
      return;
    } else return;
    event.preventDefault();
    move(target);
  });
  editor.view.dom.addEventListener("keydown", (event) => {
    if (event.key === "F10" && event.altKey && !toolbar.hidden) {
      event.preventDefault();
      move(list().find((b) => b.tabIndex === 0) || list()[0]);
    }
  });
  const refresh = () => {
    for (const [button, tool] of buttons) {
      button.disabled = !editor.isEditable;
      if (tool.active) button.setAttribute("aria-pressed", String(tool.active(editor)));
    }
    // The Tab stop must stay on a button that can take the focus.
    const all = list();
    if (all.length && !all.some((b) => b.tabIndex === 0)) setCurrent(all[0]);
  };
  editor.on("transaction", refresh);
  editor.on("selectionUpdate", refresh);
  refresh();
  return refresh;
}

/**
 * Keeps the caret in sight: ProseMirror scrolls it into view on every edit, here with a margin
 * the height of the sticky toolbar (else a line could hide under it), and again when the visual
 * viewport shrinks (a phone's keyboard opening over the text).
 */
function keepCaretInView(editor, toolbar) {
  const margins = () => {
    const top = toolbar && !toolbar.hidden ? Math.ceil(toolbar.getBoundingClientRect().height) + 8 : 8;
    editor.view.setProps({ scrollMargin: { top, bottom: 24, left: 8, right: 8 }, scrollThreshold: { top, bottom: 24, left: 0, right: 0 } });
  };
  margins();
  if (toolbar && typeof ResizeObserver === "function") new ResizeObserver(margins).observe(toolbar);
  const viewport = window.visualViewport;
  if (viewport) {
    let frame = 0;
    viewport.addEventListener("resize", () => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        if (editor.isFocused) editor.commands.scrollIntoView();
      });
    });
  }
  return margins;
}

/** A button that shows it is working: disabled, aria-busy, a spinner and `text`; undone by the
 *  function it returns. */
function busy(button, text) {
  const before = [...button.childNodes];
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.replaceChildren(el("span", { class: "busy-spinner", "aria-hidden": "true" }), el("span", { text }));
  return () => {
    button.removeAttribute("aria-busy");
    button.replaceChildren(...before);
  };
}

// --- the page -----------------------------------------------------------------------------------

function start(config) {
  const s = config.strings || {};
  const apiBase = `/api/v1/drafts/${encodeURIComponent(config.id)}`;
  const user = { name: config.user_name || "?", color: safeColour(config.user_color) };

  let frozen = Boolean(config.frozen);
  const canWrite = Boolean(config.can_write);
  const writable = () => canWrite && !frozen;

  const statusEl = $("draft-status");
  const messageEl = $("draft-message");
  const bannerEl = $("draft-banner");
  const toolbarEl = $("draft-toolbar");
  const presenceEl = $("draft-presence");

  const showMessage = (text, kind = "error") => {
    if (!messageEl) return;
    messageEl.textContent = text || "";
    messageEl.hidden = !text;
    messageEl.className = kind === "error" ? "flash flash-error" : "flash";
  };

  // --- Yjs and the connection -------------------------------------------------------------------

  const ydoc = new Y.Doc();
  let everSynced = false;
  let pending = false; // local edits made while not connected
  let accessLost = false;
  let removed = false; // closed with 4403: the mediator removed this person from the case
  const provider = new WebsocketProvider(config.ws_url, String(config.id), ydoc, {
    // The server is the one place edits meet: no shortcut between tabs of this browser.
    disableBc: true,
    maxBackoffTime: 5000,
    // 1008 (policy) and 44xx: the server refuses this person; retrying cannot help.
    shouldReconnect: (event) => !(event.code === 1008 || (event.code >= 4400 && event.code < 4500)),
  });

  const renderStatus = () => {
    if (!statusEl) return;
    let state;
    let text;
    if (accessLost) {
      state = "offline";
      text = removed ? s.removed_from_case : s.no_access;
    } else if (!navigator.onLine || (!provider.wsconnected && !provider.wsconnecting && everSynced)) {
      state = "offline";
      text = canWrite && !frozen ? s.offline_edits : s.offline;
    } else if (provider.wsconnected && provider.synced) {
      state = "connected";
      text = writable() ? s.connected : s.connected_reader;
    } else {
      state = everSynced ? "reconnecting" : "connecting";
      text = everSynced ? s.reconnecting : s.connecting;
    }
    if (pending && state !== "connected" && canWrite && !frozen) text = `${text} ${s.pending}`;
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  };

  provider.on("status", renderStatus);
  provider.on("sync", (synced) => {
    if (synced) {
      everSynced = true;
      pending = false;
      document.body.classList.add("draft-synced");
    }
    renderStatus();
  });
  provider.on("closed", (close) => {
    accessLost = true;
    removed = Boolean(close && close.code === 4403);
    renderStatus();
  });
  window.addEventListener("online", renderStatus);
  window.addEventListener("offline", renderStatus);

  // --- the editor -------------------------------------------------------------------------------

  const mount = $("draft-editor");
  mount.textContent = "";
  const editor = new Editor({
    element: mount,
    editable: writable(),
    extensions: [
      StarterKit.configure({
        // Collaboration brings its own undo history, tied to Yjs.
        undoRedo: false,
        // Only what the server renders into the agreement (documents/prosemirror.py).
        code: false,
        codeBlock: false,
        link: false,
        // It would append a paragraph on load, an edit (and lost approvals) by merely opening.
        trailingNode: false,
        heading: { levels: [1, 2, 3] },
      }),
      Collaboration.configure({ document: ydoc, field: "default" }),
      CollaborationCaret.configure({
        provider,
        user,
        render: renderCaret,
        selectionRender: renderSelection,
      }),
      readOnlyGuard(writable),
    ],
    editorProps: {
      attributes: {
        class: "draft-doc",
        role: "textbox",
        "aria-multiline": "true",
        "aria-label": s.editor_label || "",
        lang: config.language || "",
      },
    },
  });

  const refreshToolbar = setupToolbar(editor, toolbarEl);
  const refreshMargins = keepCaretInView(editor, toolbarEl);

  const applyMode = () => {
    const canEdit = writable();
    editor.setEditable(canEdit);
    editor.view.dom.setAttribute("aria-readonly", String(!canEdit));
    document.body.classList.toggle("draft-readonly", !canEdit);
    if (toolbarEl) toolbarEl.hidden = !canEdit;
    refreshMargins();
    if (bannerEl) {
      const frozenBanner = $("draft-banner-frozen");
      const readerBanner = $("draft-banner-reader");
      if (frozenBanner) frozenBanner.hidden = !frozen;
      if (readerBanner) readerBanner.hidden = frozen || canWrite;
      bannerEl.hidden = canEdit;
    }
    refreshToolbar();
    renderStatus();
  };

  // --- who is here ------------------------------------------------------------------------------

  const renderPresence = () => {
    if (!presenceEl) return;
    const seen = new Map();
    for (const [clientId, state] of provider.awareness.getStates()) {
      if (!state || !state.user) continue;
      const mine = clientId === ydoc.clientID;
      const key = `${state.user.name}\u0000${state.user.color}`;
      if (!seen.has(key) || mine) seen.set(key, { ...state.user, mine });
    }
    presenceEl.textContent = "";
    for (const person of seen.values()) {
      const dot = el("span", { class: "presence-dot", "aria-hidden": "true" });
      dot.style.backgroundColor = safeColour(person.color);
      presenceEl.append(el("li", {}, dot, person.name, person.mine ? ` ${s.you}` : ""));
    }
  };
  provider.awareness.on("change", renderPresence);
  renderPresence();

  // --- approvals and freezing -------------------------------------------------------------------

  const approveBtn = $("draft-approve");
  const freezeBtn = $("draft-freeze");
  const partiesEl = $("draft-parties");
  const versionEl = $("draft-version");
  const hashEl = $("draft-sha256");
  let latest = null;

  const renderDraft = (data) => {
    latest = data;
    if (versionEl) {
      versionEl.textContent = format(s.version, { version: data.version });
      versionEl.dataset.version = String(data.version);
    }
    if (partiesEl) {
      partiesEl.textContent = "";
      const byUser = new Map((data.approvals || []).map((a) => [a.user_id, a]));
      for (const party of data.parties || []) {
        const approval = byUser.get(party.user_id);
        let state = "none";
        let text = s.not_approved;
        if (party.approved_current) {
          state = "current";
          text = s.approved_current;
        } else if (approval) {
          state = "earlier";
          text = format(s.approved_earlier, { version: approval.version });
        }
        const mark = el("span", { class: "approval-mark", "aria-hidden": "true",
                                  text: state === "current" ? "✓" : state === "earlier" ? "↺" : "…" });
        partiesEl.append(el("li", { class: `approval approval-${state}`, "data-user-id": party.user_id },
          mark, el("strong", { text: party.name }), " — ", text));
      }
      if (!(data.parties || []).length) partiesEl.append(el("li", { class: "muted", text: s.no_parties }));
    }
    const everyone = (data.parties || []).length > 0 && data.parties.every((p) => p.approved_current);
    const mine = (data.parties || []).find((p) => p.user_id === config.user_id);
    if (approveBtn && approveBtn.getAttribute("aria-busy") !== "true") {
      const done = Boolean(mine && mine.approved_current);
      approveBtn.disabled = data.frozen || done;
      approveBtn.textContent = done ? s.you_approved : s.approve;
    }
    if (freezeBtn && freezeBtn.getAttribute("aria-busy") !== "true") {
      freezeBtn.disabled = data.frozen || !everyone;
      const hint = $("draft-freeze-hint");
      if (hint) hint.hidden = data.frozen || everyone;
    }
    if (data.frozen && hashEl && data.frozen_sha256) hashEl.textContent = data.frozen_sha256;
    if (data.frozen !== frozen) {
      frozen = Boolean(data.frozen);
      applyMode();
    }
  };

  let loading = null;
  const refresh = async () => {
    if (loading) return loading;
    loading = (async () => {
      try {
        renderDraft(await api(apiBase, {}, s));
      } catch (error) {
        if (error instanceof ApiError) showMessage(error.message);
      } finally {
        loading = null;
      }
    })();
    return loading;
  };

  let editTimer = 0;
  ydoc.on("update", (_update, origin) => {
    if (origin !== provider && !(provider.wsconnected && provider.synced)) {
      pending = true;
      renderStatus();
    }
    // Edits (ours or others') change the version and clear approvals: refresh soon after.
    clearTimeout(editTimer);
    editTimer = setTimeout(refresh, REFRESH_AFTER_EDIT_MS);
  });
  setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });

  approveBtn?.addEventListener("click", async () => {
    const done = busy(approveBtn, s.approving);
    showMessage("");
    try {
      const data = await api(`${apiBase}/approve`, { method: "POST" }, s);
      done();
      renderDraft(data);
      showMessage(s.approved_done, "info");
    } catch (error) {
      done();
      showMessage(error.message);
      approveBtn.disabled = false;
    }
  });

  freezeBtn?.addEventListener("click", async () => {
    if (!window.confirm(s.freeze_confirm)) return;
    const done = busy(freezeBtn, s.freezing);
    showMessage("");
    try {
      const result = await api(`${apiBase}/freeze`, { method: "POST" }, s);
      done();
      freezeBtn.disabled = true;
      frozen = true;
      if (hashEl) hashEl.textContent = result.sha256;
      applyMode();
      showMessage(s.frozen_done, "info");
      refresh();
    } catch (error) {
      done();
      showMessage(error.message);
      freezeBtn.disabled = false;
    }
  });

  // --- differences between versions -------------------------------------------------------------

  const versionsBox = $("draft-versions");
  const fromSel = $("draft-diff-from");
  const toSel = $("draft-diff-to");
  const diffOut = $("draft-diff");
  const compareBtn = $("draft-compare");

  const reasonLabel = (reason) => (s.reasons && s.reasons[reason]) || reason || "";

  const loadVersions = async () => {
    if (!fromSel || !toSel) return;
    diffOut.textContent = s.loading;
    let versions;
    try {
      versions = await api(`${apiBase}/versions`, {}, s);
    } catch (error) {
      diffOut.textContent = error.message;
      return;
    }
    const keepFrom = fromSel.value;
    const keepTo = toSel.value;
    for (const select of [fromSel, toSel]) {
      select.textContent = "";
      for (const v of versions) {
        const label = `${format(s.version, { version: v.version })} · ${reasonLabel(v.reason)} · ${formatTime(v.at)}`;
        select.append(el("option", { value: v.version, text: label }));
      }
    }
    if (versions.length < 2) {
      diffOut.textContent = s.one_version;
      compareBtn.disabled = true;
      return;
    }
    compareBtn.disabled = false;
    const values = versions.map((v) => String(v.version));
    fromSel.value = values.includes(keepFrom) ? keepFrom : values[values.length - 2];
    toSel.value = values.includes(keepTo) ? keepTo : values[values.length - 1];
    diffOut.textContent = "";
    await compare();
  };

  const compare = async () => {
    const params = new URLSearchParams({ from: fromSel.value, to: toSel.value });
    diffOut.textContent = s.loading;
    let diff;
    try {
      diff = await api(`${apiBase}/diff?${params}`, {}, s);
    } catch (error) {
      diffOut.textContent = error.message;
      return;
    }
    diffOut.textContent = "";
    const lines = diff.lines || [];
    if (!lines.some((line) => line.op !== "equal")) {
      diffOut.append(el("p", { class: "muted", text: s.no_differences }));
    }
    const list = el("ol", { class: "diff-lines" });
    for (const line of lines) {
      const op = ["insert", "delete"].includes(line.op) ? line.op : "equal";
      const tag = op === "insert" ? "ins" : op === "delete" ? "del" : "span";
      const sign = op === "insert" ? "+" : op === "delete" ? "−" : " ";
      const label = op === "insert" ? s.added : op === "delete" ? s.removed : "";
      list.append(el("li", { class: `diff-${op}` },
        el("span", { class: "diff-sign", "aria-hidden": "true", text: sign }),
        label ? el("span", { class: "visually-hidden", text: `${label}: ` }) : null,
        el(tag, { text: line.text || "\u00a0" })));
    }
    diffOut.append(list);
  };

  versionsBox?.addEventListener("toggle", () => {
    if (versionsBox.open) loadVersions();
  });
  compareBtn?.addEventListener("click", compare);
  $("draft-versions-reload")?.addEventListener("click", loadVersions);

  applyMode();
  refresh();

  // For tests and for debugging in the console.
  window.odrDraft = { editor, provider, ydoc, refresh };
}

function boot() {
  const config = readConfig();
  if (config && $("draft-editor")) start(config);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
