// A standard Yjs client (npm `yjs` + `y-websocket`, with `ws` as the WebSocket) edits a draft.
//
//   node tests/drafts/node_client.mjs WS_BASE DRAFT_ID TEXT
//
// WS_BASE is the y-websocket server address, e.g. ws://127.0.0.1:8000/ws/drafts (the room is the
// draft id). The session cookie comes from the environment: ODR_COOKIE="name=value; ...", and
// ODR_ORIGIN (the site's http address) is sent as Origin, as a browser would.
//
// It connects, waits for the first sync, appends a paragraph holding TEXT to the XmlFragment
// `default` (where Tiptap keeps the document), then waits until a second, independent provider
// receives that paragraph from the server. It prints one JSON line and exits 0, or exits 1 with a
// JSON line saying what failed.

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The packages live in frontend/node_modules, not beside this file.
const here = path.dirname(fileURLToPath(import.meta.url));
const frontend = process.env.ODR_FRONTEND || path.resolve(here, "..", "..", "frontend");
const require = createRequire(path.join(frontend, "package.json"));
// All three through require: one copy of yjs (the one y-websocket itself loads).
const Y = require("yjs");
const { WebsocketProvider } = require("y-websocket");
const WebSocket = require("ws");

const [wsBase, draftId, text] = process.argv.slice(2);
const timeoutMs = Number(process.env.ODR_TIMEOUT_MS || 10000);
if (!wsBase || !draftId || text === undefined) {
  console.error("usage: node_client.mjs WS_BASE DRAFT_ID TEXT");
  process.exit(2);
}

const headers = {};
if (process.env.ODR_COOKIE) headers.Cookie = process.env.ODR_COOKIE;
if (process.env.ODR_ORIGIN) headers.Origin = process.env.ODR_ORIGIN;

/** `ws` with our headers, in the shape y-websocket expects of a WebSocket class. */
class CookieWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers });
  }
}

const providers = [];
const closes = [];

function connect(doc) {
  const provider = new WebsocketProvider(wsBase, String(draftId), doc, {
    WebSocketPolyfill: CookieWebSocket,
    disableBc: true,
  });
  provider.on("connection-close", (event) => {
    if (event) closes.push({ code: event.code, reason: String(event.reason || "") });
  });
  providers.push(provider);
  return provider;
}

function synced(provider) {
  return new Promise((resolve) => {
    if (provider.synced) resolve();
    else provider.on("sync", (ok) => ok && resolve());
  });
}

function paragraphs(doc) {
  const out = [];
  for (const node of doc.getXmlFragment("default").toArray()) {
    if (node instanceof Y.XmlElement && node.nodeName === "paragraph") {
      out.push(node.toArray().map((child) => (child instanceof Y.XmlText ? child.toString() : "")).join(""));
    }
  }
  return out;
}

function finish(code, result) {
  console.log(JSON.stringify(result));
  for (const provider of providers) provider.destroy();
  // Let the sockets close cleanly, then leave even if something keeps the loop alive.
  setTimeout(() => process.exit(code), 100).unref();
}

const timer = setTimeout(() => {
  finish(1, { ok: false, error: "timeout", closes, writer_synced: providers[0]?.synced ?? false });
}, timeoutMs);

try {
  const writerDoc = new Y.Doc();
  const writer = connect(writerDoc);
  await synced(writer);
  const before = writerDoc.getXmlFragment("default").length;

  writerDoc.transact(() => {
    const paragraph = new Y.XmlElement("paragraph");
    paragraph.insert(0, [new Y.XmlText(text)]);
    const fragment = writerDoc.getXmlFragment("default");
    fragment.insert(fragment.length, [paragraph]);
  });

  // A second client that starts empty: it can only see the paragraph through the server.
  const readerDoc = new Y.Doc();
  const reader = connect(readerDoc);
  await synced(reader);
  await new Promise((resolve) => {
    const check = () => paragraphs(readerDoc).includes(text) && resolve();
    readerDoc.on("update", check);
    check();
  });

  clearTimeout(timer);
  finish(0, {
    ok: true,
    blocks_before: before,
    blocks_after: readerDoc.getXmlFragment("default").length,
    paragraphs_seen_by_second_client: paragraphs(readerDoc),
    closes,
  });
} catch (error) {
  clearTimeout(timer);
  finish(1, { ok: false, error: String(error && error.stack ? error.stack : error), closes });
}
