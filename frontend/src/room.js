// The live room: camera and microphone set-up, the signalling WebSocket (DESIGN.md section 8),
// two RTCPeerConnections to the server's relay (publisher: we offer; subscriber: the server
// offers), video tiles, chat, the lobby, and the mediator's controls. The server decides who is
// where and who receives what; this page only shows it.

const config = JSON.parse(document.getElementById("room-config").textContent);
const S = config.strings;
const $ = (id) => document.getElementById(id);

const el = {
  conn: $("room-conn"), where: $("room-where"), alerts: $("room-alerts"),
  announcer: $("room-announce"), banner: $("room-caucus-banner"), bannerText: $("room-caucus-text"),
  chat: $("room-chat"), chatJump: $("room-chat-jump"),
  setup: $("room-setup"), preview: $("room-preview"), camera: $("room-camera"), mic: $("room-mic"),
  audioOnly: $("room-audio-only"), mediaError: $("room-media-error"), join: $("room-join"),
  lobby: $("room-lobby"), main: $("room-main"), tiles: $("room-tiles"),
  mute: $("room-mute"), cameraToggle: $("room-camera-toggle"), call: $("room-call"),
  soundOnly: $("room-sound-only"),
  leave: $("room-leave"), mediator: $("room-mediator"), lobbyList: $("room-lobby-list"),
  channelList: $("room-channel-list"), caucusForm: $("room-caucus-form"),
  caucusPeople: $("room-caucus-people"), recall: $("room-recall"),
  broadcastForm: $("room-broadcast-form"), broadcastText: $("room-broadcast-text"),
  timer: $("room-timer"), timerForm: $("room-timer-form"),
  neutrality: $("room-neutrality"), neutralityText: $("room-neutrality-text"),
  timerMinutes: $("room-timer-minutes"), timerStop: $("room-timer-stop"),
  chatLog: $("room-chat-log"), chatForm: $("room-chat-form"), chatText: $("room-chat-text"),
  notes: $("room-notes"), notesLog: $("room-notes-log"), notesForm: $("room-notes-form"),
  notesText: $("room-notes-text"),
};

const room = {
  ws: null, state: null, joined: false, leaving: false, retries: 0,
  // audioOnly: chosen before joining (no camera, nothing seen); soundOnly: the others are heard
  // and not seen, switched during the session too (the server stops sending their video).
  local: null, audioOnly: false, soundOnly: false, muted: false, cameraOff: false,
  pub: null, sub: null, tracks: {}, streams: new Map(), mediaUnavailable: !config.media,
  queue: Promise.resolve(), previewing: Promise.resolve(), renegotiate: false,
};

function fmt(text, params) {
  return text.replace(/%\((\w+)\)s/g, (_m, key) => params[key] ?? "");
}

function label(person) {
  const role = S.roles[person.role] || person.role;
  const side = person.side && S.sides[person.side] ? `, ${S.sides[person.side]}` : "";
  return `${role}${side}`;
}

function channelName(id, state) {
  if (id === "joint") return S.joint;
  const names = (state.channels[id] || [])
    .filter((u) => u !== state.you.user_id)
    .map((u) => state.people[u]?.name).filter(Boolean);
  return names.length ? `${S.caucus}: ${names.join(", ")}` : S.caucus;
}

// The relay holds video back while this browser's link cannot carry it (rooms/media/links.py).
function onLink(paused) {
  el.conn.textContent = paused ? S.connected_weak : S.connected;
  el.conn.classList.toggle("room-weak", paused);
  alertUser(paused ? S.video_paused_weak : S.video_back);
}

function alertUser(text, { sound = false } = {}) {
  const item = document.createElement("p");
  item.className = "room-alert";
  item.textContent = text;
  el.alerts.prepend(item);
  setTimeout(() => item.remove(), 15000);
  announce(text);
  if (sound) beep();
}

// The polite live region: a screen reader reads each new line once (the written alerts are not
// live themselves, so nothing is read twice). The last few lines stay.
function announce(text) {
  const line = document.createElement("p");
  line.textContent = text;
  el.announcer.append(line);
  while (el.announcer.childElementCount > 6) el.announcer.firstElementChild.remove();
}

// A button's visible words (the icon beside them stays).
function setLabel(button, text) {
  (button.querySelector(".room-ctl-label") || button).textContent = text;
}

// A request in flight: its button shows that it is working and takes no second press until
// the answer comes (one of the message types in ``until``), or ends by itself after a while
// (``timeout``; 0: only when released). aria-disabled rather than disabled, so that the
// keyboard focus stays on the button.
const inFlight = new Map();

function working(button, { until = [], label = null, timeout = 15000 } = {}) {
  if (!button) return;
  release(button);
  const timer = timeout ? setTimeout(() => release(button), timeout) : null;
  const entry = { until, label: null, timer };
  if (label) {
    entry.label = (button.querySelector(".room-ctl-label") || button).textContent;
    setLabel(button, label);
  }
  inFlight.set(button, entry);
  button.classList.add("is-working");
  button.setAttribute("aria-disabled", "true");
  button.setAttribute("aria-busy", "true");
}

function release(button) {
  const entry = inFlight.get(button);
  if (!entry) return;
  inFlight.delete(button);
  clearTimeout(entry.timer);
  if (entry.label !== null) setLabel(button, entry.label);
  button.classList.remove("is-working");
  button.removeAttribute("aria-disabled");
  button.removeAttribute("aria-busy");
}

function answered(type) {
  for (const [button, entry] of [...inFlight]) {
    if (entry.until.includes(type) || !button.isConnected) release(button);
  }
}

const isWorking = (button) => inFlight.has(button);
const submitOf = (form) => form.querySelector("button[type=submit]");

function beep() {
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.1;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.25);
    osc.onended = () => ctx.close();
  } catch {
    // No audio output: the written alert is enough.
  }
}

// --- devices and preview ----------------------------------------------------------------------

async function startPreview() {
  stopLocal();
  room.audioOnly = el.audioOnly.checked;
  const constraints = {
    audio: el.mic.value ? { deviceId: { exact: el.mic.value } } : true,
    video: room.audioOnly ? false : videoConstraints(),
  };
  try {
    room.local = await navigator.mediaDevices.getUserMedia(constraints);
    el.preview.srcObject = room.local;
    el.mediaError.hidden = true;
    await listDevices();
  } catch {
    room.local = null;
    el.preview.srcObject = null;
    el.mediaError.textContent = S.media_error;
    el.mediaError.hidden = false;
  }
  applyTrackSwitches();
}

function videoConstraints() {
  return { ...(el.camera.value ? { deviceId: { exact: el.camera.value } } : {}),
           width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { max: 30 } };
}

function stopLocal() {
  if (room.local) for (const t of room.local.getTracks()) t.stop();
  room.local = null;
}

async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, current) => {
    const chosen = select.value || current;
    select.replaceChildren();
    for (const d of devices.filter((x) => x.kind === kind)) {
      const option = new Option(d.label || kind, d.deviceId);
      option.selected = d.deviceId === chosen;
      select.add(option);
    }
  };
  const track = (kind) => room.local?.getTracks().find((t) => t.kind === kind);
  fill(el.camera, "videoinput", track("video")?.getSettings().deviceId);
  fill(el.mic, "audioinput", track("audio")?.getSettings().deviceId);
}

function applyTrackSwitches() {
  if (!room.local) return;
  for (const t of room.local.getAudioTracks()) t.enabled = !room.muted;
  for (const t of room.local.getVideoTracks()) t.enabled = !room.cameraOff;
  setLabel(el.mute, room.muted ? S.unmute : S.mute);
  el.mute.setAttribute("aria-pressed", String(room.muted));
  setLabel(el.cameraToggle, room.cameraOff ? S.camera_on_btn : S.camera_off_btn);
  el.cameraToggle.setAttribute("aria-pressed", String(room.cameraOff));
  el.cameraToggle.hidden = room.audioOnly || !room.local.getVideoTracks().length;
  renderTiles();
}

// --- signalling -------------------------------------------------------------------------------

function send(message) {
  if (room.ws && room.ws.readyState === WebSocket.OPEN) room.ws.send(JSON.stringify(message));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${config.socket}`);
  room.ws = ws;
  el.conn.textContent = S.connecting;
  ws.onopen = () => {
    room.retries = 0;
    el.conn.textContent = S.connected;
    send({ type: "join" });
    if (room.soundOnly) send({ type: "media.receive", video: false });
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    // One message at a time: media negotiation steps must not overlap.
    room.queue = room.queue.then(() => handle(message)).catch((err) => console.error(err));
  };
  ws.onclose = (event) => {
    if (room.ws !== ws) return;
    closeMedia();
    // No answer comes on a closed socket: nothing stays "working" (but joining, until a state).
    for (const button of [...inFlight.keys()]) if (button !== el.join) release(button);
    if (room.leaving) return ended(S.ended);
    if (event.code === 4000) return ended(S.replaced);
    if (event.code === 4001) return ended(S.case_ended);
    // 4403: the mediator removed this person from the case; coming back is refused.
    if (event.code === 4403) return ended(S.removed);
    // 1012/1013: the room is moving to another server, or cannot be placed for a moment
    // (the server sent why as an error first); anything else before a first state is a refusal.
    const comeBack = event.code === 1012 || event.code === 1013;
    if (room.retries === 0 && !room.state && !comeBack) return ended(S.refused);
    el.conn.textContent = S.disconnected;
    const delay = Math.min(1000 * 2 ** room.retries, 5000);
    room.retries += 1;
    setTimeout(connect, delay);
  };
}

function ended(text) {
  for (const button of [...inFlight.keys()]) release(button);
  el.conn.textContent = text;
  el.setup.hidden = true;
  el.banner.hidden = true;
  el.main.hidden = true;
  el.lobby.hidden = true;
  el.where.hidden = true;
  stopLocal();
}

async function handle(message) {
  answered(message.type);
  switch (message.type) {
    case "state": return onState(message);
    case "chat": return addChat(message);
    case "history": return showHistory(message);
    case "knock":  // written, sounded and read out (alertUser announces)
      return alertUser(fmt(S.knocking, { name: message.name }), { sound: true });
    case "call_mediator":
      return alertUser(fmt(S.calling, { name: message.name }), { sound: true });
    case "note": return addNote(message);
    case "notes":
      el.notesLog.replaceChildren();
      for (const n of message.notes) addNote(n);
      return undefined;
    case "publish.answer":
      if (room.pub?.signalingState === "have-local-offer") {
        await room.pub.setRemoteDescription({ type: "answer", sdp: message.sdp });
        if (room.renegotiate) await renegotiatePublisher();
      }
      return undefined;
    case "subscribe.offer": return onSubscribeOffer(message);
    case "media.link": return onLink(message.video === "paused");
    case "error":
      if (message.code === "media_unavailable") {
        if (!room.mediaUnavailable) alertUser(S.no_video_server);
        room.mediaUnavailable = true;
        return undefined;
      }
      return alertUser(message.message);
    default: return undefined;
  }
}

// The countdown of the meeting this person is in (the server sends only that one), ticking
// on this page's clock; the end sounds once per countdown.
const countdown = { endsAt: null, rang: null, ticker: null };

function showTimer(timer) {
  countdown.endsAt = timer ? timer.ends_at * 1000 : null;
  clearInterval(countdown.ticker);
  countdown.ticker = null;
  tickTimer();
  if (countdown.endsAt !== null) countdown.ticker = setInterval(tickTimer, 1000);
}

function tickTimer() {
  const endsAt = countdown.endsAt;
  if (endsAt === null) {
    el.timer.hidden = true;
    return;
  }
  const left = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
  el.timer.hidden = false;
  el.timer.textContent = `${S.time_left}: ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  el.timer.classList.toggle("room-timer-up", left === 0);
  if (left === 0) {
    clearInterval(countdown.ticker);
    countdown.ticker = null;
    // Only a countdown that ran out while watched rings: not one long over on arrival.
    if (countdown.rang !== endsAt && Date.now() - endsAt < 5000) alertUser(S.time_up, { sound: true });
    countdown.rang = endsAt;
  }
}

// The mediator's own time per kind of meeting (the neutrality record), counted by the server
// up to its last change and ticking here from when the state arrived.
const balance = { seconds: null, position: null, at: 0, ticker: null };

function showNeutrality(neutrality) {
  el.neutrality.hidden = !neutrality;
  clearInterval(balance.ticker);
  balance.ticker = null;
  if (!neutrality) return;
  balance.seconds = neutrality.seconds;
  balance.position = neutrality.position;
  balance.at = Date.now();
  tickNeutrality();
  balance.ticker = setInterval(tickNeutrality, 1000);
}

function clock(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
}

function tickNeutrality() {
  const running = (Date.now() - balance.at) / 1000;
  const parts = ["joint", "a", "b", "other"].filter((k) => k !== "other" || balance.seconds.other)
    .map((k) => {
      const total = balance.seconds[k] + (balance.position === k ? running : 0);
      return `${S["neutrality_" + k]} ${clock(total)}`;
    });
  el.neutralityText.textContent = parts.join(" · ");
}

// What a separate meeting is called for the person in it: for a party, that they are alone
// with the mediator; for a mediator, with whom (a side, when everyone there is of one side).
function caucusText(state) {
  if (!state.you.mediator) return S.private_with_mediator;
  const others = (state.channels[state.you.channel] || []).map((u) => state.people[u])
    .filter((p) => p && !["mediator", "co_mediator"].includes(p.role));
  const sides = new Set(others.map((p) => p.side));
  const [side] = sides;
  const who = sides.size === 1 && S.sides[side] ? S.sides[side]
    : others.map((p) => p.name).join(", ") || S.nobody;
  return fmt(S.private_with, { who });
}

// What changed for this person (let in, another meeting) and, for a mediator, who was let in:
// said to screen readers, and shown where it is not shown already.
function tellChanges(before, state) {
  const was = before ? before.you.channel : undefined;
  const now = state.you.channel;
  if (now === null && was !== null) announce(`${S.lobby}. ${S.lobby_wait}`);
  if (was === null && now !== null) announce(S.you_let_in);
  if (was && now && was !== now) {
    if (now === "joint") alertUser(S.back_joint);
    else announce(caucusText(state));
  }
  if (before && state.you.mediator) {
    for (const uid of before.lobby) {
      const person = state.people[uid];
      if (person && !state.lobby.includes(uid)
          && Object.values(state.channels).some((members) => members.includes(uid))) {
        announce(fmt(S.let_in, { name: person.name }));
      }
    }
  }
}

function onState(state) {
  const before = room.state;
  room.state = state;
  if (!before) {  // joined: the set-up (and its progress) gives way to the room
    release(el.join);
    el.setup.hidden = true;
    el.preview.srcObject = null;
  }
  tellChanges(before, state);
  showNeutrality(state.neutrality);
  if ((state.timer?.ends_at ?? null) !== (before?.timer?.ends_at ?? null)
      || state.you.channel !== before?.you.channel) showTimer(state.timer);
  const channel = state.you.channel;
  el.lobby.hidden = channel !== null;
  el.main.hidden = channel === null;
  el.where.hidden = false;
  if (channel === null) {
    el.where.textContent = `${S.you_are_in} ${S.lobby}`;
  } else {
    const others = (state.channels[channel] || []).filter((u) => u !== state.you.user_id)
      .map((u) => state.people[u]?.name).filter(Boolean);
    el.where.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = channelName(channel, state);
    el.where.append(`${S.you_are_in} `, strong, `. ${S.heard_by} ${others.join(", ") || S.nobody}`);
    el.where.dataset.channel = channel;
  }
  const inCaucus = channel !== null && channel !== "joint";
  el.where.classList.toggle("in-caucus", inCaucus);
  el.banner.hidden = !inCaucus;
  if (inCaucus) el.bannerText.textContent = caucusText(state);
  else el.bannerText.textContent = "";
  el.mediator.hidden = !state.you.mediator;
  el.notes.hidden = !state.you.mediator;
  el.call.hidden = state.you.mediator;
  if (state.you.mediator) renderMediator(state);
  renderTiles();
  // Publish once let in from the lobby (nobody in the lobby sends anything).
  const wasIn = before && before.you.channel !== null;
  if (channel !== null && !wasIn && !config.media) alertUser(S.no_video_server);
  if (channel !== null && (!wasIn || !room.pub)) startPublishing();
}

// --- media ------------------------------------------------------------------------------------

function newPeer(kind) {
  const pc = new RTCPeerConnection({ iceServers: config.ice_servers });
  pc.onicecandidate = (event) => {
    if (event.candidate) send({ type: "ice", pc: kind, candidate: event.candidate.toJSON() });
  };
  return pc;
}

async function startPublishing() {
  if (room.pub || room.mediaUnavailable || !room.local || room.state?.you.role === "observer") {
    return;
  }
  const pc = newPeer("publish");
  room.pub = pc;
  for (const track of room.local.getTracks()) {
    pc.addTransceiver(track, { direction: "sendonly", streams: [room.local] });
  }
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  send({ type: "publish.offer", sdp: pc.localDescription.sdp });
}

async function onSubscribeOffer(message) {
  if (!room.sub) {
    room.sub = newPeer("subscribe");
    room.sub.ontrack = (event) => {
      const owner = ownerOf(event.track, event.transceiver, event.streams);
      if (owner === undefined) return;
      let stream = room.streams.get(owner);
      if (!stream) {
        stream = new MediaStream();
        room.streams.set(owner, stream);
      }
      for (const old of stream.getTracks().filter((t) => t.kind === event.track.kind)) {
        stream.removeTrack(old);
      }
      stream.addTrack(event.track);
      event.track.onended = () => { stream.removeTrack(event.track); renderTiles(); };
      renderTiles();
    };
  }
  room.tracks = message.tracks || {};
  await room.sub.setRemoteDescription({ type: "offer", sdp: message.sdp });
  // Sound only: decline any video the server still offers; and accept it again afterwards (a
  // direction once set stays on the transceiver through later offers).
  for (const t of room.sub.getTransceivers()) {
    if (t.receiver.track.kind === "video") t.direction = room.soundOnly ? "inactive" : "recvonly";
  }
  const answer = await room.sub.createAnswer();
  await room.sub.setLocalDescription(answer);
  send({ type: "subscribe.answer", sdp: room.sub.localDescription.sdp });
  // Whoever is no longer offered is no longer seen (e.g. they went into a caucus).
  const owners = new Set(Object.values(room.tracks).map(Number));
  for (const [owner, stream] of room.streams) {
    if (!owners.has(owner)) room.streams.delete(owner);
    else for (const t of stream.getTracks()) if (t.readyState === "ended") stream.removeTrack(t);
  }
  renderTiles();
}

function ownerOf(track, transceiver, streams) {
  // The server names each offered track's owner; accept the track id, the mid or the stream id.
  const keys = [track.id, transceiver?.mid, ...(streams || []).map((s) => s.id)];
  for (const key of keys) {
    if (key != null && room.tracks[key] !== undefined) return Number(room.tracks[key]);
  }
  return undefined;
}

function closeMedia() {
  if (room.pub) room.pub.close();
  if (room.sub) room.sub.close();
  room.pub = null;
  room.sub = null;
  room.streams.clear();
  room.tracks = {};
}

// --- rendering --------------------------------------------------------------------------------

function renderTiles() {
  const state = room.state;
  if (!state || state.you.channel === null) {
    el.tiles.replaceChildren();
    return;
  }
  const members = state.channels[state.you.channel] || [];
  const existing = new Map([...el.tiles.children].map((t) => [t.dataset.user, t]));
  const wanted = [];
  for (const uid of members) {
    const person = state.people[uid] || { name: "?", role: "" };
    let tile = existing.get(String(uid));
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "room-tile";
      tile.dataset.user = String(uid);
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      const caption = document.createElement("figcaption");
      tile.append(video, caption);
    }
    const video = tile.querySelector("video");
    const mine = uid === state.you.user_id;
    tile.classList.toggle("room-tile-self", mine);  // small, in a corner, on a phone
    const stream = mine ? room.local : room.streams.get(uid);
    video.muted = mine;
    if (video.srcObject !== (stream || null)) video.srcObject = stream || null;
    const hasVideo = !!stream && stream.getVideoTracks().some((t) => t.enabled && t.readyState === "live")
      && !(mine && room.cameraOff) && !(room.soundOnly && !mine);
    tile.classList.toggle("no-video", !hasVideo);
    tile.classList.toggle("offline", !person.online);
    tile.dataset.hasStream = stream ? "1" : "0";
    const caption = tile.querySelector("figcaption");
    const who = `${person.name}${mine ? ` (${S.you})` : ""}`;
    const extra = person.online ? (hasVideo ? "" : ` · ${S.camera_off}`) : ` · ${S.offline}`;
    caption.textContent = `${who} — ${label(person)}${extra}`;
    wanted.push(tile);
  }
  el.tiles.replaceChildren(...wanted);
}

function personLine(uid, state) {
  const person = state.people[uid] || { name: "?", role: "" };
  return `${person.name} — ${label(person)}`;
}

function renderMediator(state) {
  el.lobbyList.replaceChildren();
  if (!state.lobby.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = S.no_one_waiting;
    el.lobbyList.append(li);
  }
  for (const uid of state.lobby) {
    const li = document.createElement("li");
    li.dataset.user = String(uid);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-primary room-admit";
    button.textContent = S.admit;
    button.onclick = () => {
      if (isWorking(button)) return;
      working(button, { until: ["state", "error"] });
      send({ type: "admit", user_id: uid });
    };
    li.append(`${personLine(uid, state)} `, button);
    el.lobbyList.append(li);
  }

  el.channelList.replaceChildren();
  const ids = Object.keys(state.channels);
  for (const id of ids) {
    const box = document.createElement("div");
    box.className = "room-channel";
    box.dataset.channel = id;
    const title = document.createElement("h4");
    title.textContent = channelName(id, state) + (id === state.you.channel ? ` (${S.you})` : "");
    box.append(title);
    if (id !== "joint") {
      const close = document.createElement("button");
      close.type = "button";
      close.className = "btn btn-link room-close";
      close.textContent = S.close;
      close.onclick = () => {
        if (isWorking(close)) return;
        working(close, { until: ["state", "error"] });
        send({ type: "caucus.close", channel: id });
      };
      title.append(" ", close);
    }
    const list = document.createElement("ul");
    list.className = "room-list";
    for (const uid of state.channels[id]) {
      const li = document.createElement("li");
      li.dataset.user = String(uid);
      const select = document.createElement("select");
      select.className = "room-move";
      select.setAttribute("aria-label", `${S.move_to}: ${state.people[uid]?.name || ""}`);
      select.add(new Option(`${S.move_to}…`, ""));
      for (const target of ids.filter((x) => x !== id)) {
        select.add(new Option(channelName(target, state), target));
      }
      select.onchange = () => {
        if (select.value) send({ type: "caucus.move", user_id: uid, channel: select.value });
      };
      li.append(`${personLine(uid, state)} `, select);
      list.append(li);
    }
    box.append(list);
    el.channelList.append(box);
  }

  const checked = new Set([...el.caucusPeople.querySelectorAll("input:checked")].map((i) => i.value));
  el.caucusPeople.replaceChildren();
  for (const id of ids) {
    for (const uid of state.channels[id]) {
      if (uid === state.you.user_id) continue;
      const lab = document.createElement("label");
      lab.className = "check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = String(uid);
      box.checked = checked.has(box.value);
      lab.append(box, ` ${personLine(uid, state)}`);
      el.caucusPeople.append(lab);
    }
  }
  el.recall.hidden = ids.length < 2;
}

function chatItem(message) {
  const li = document.createElement("li");
  const who = document.createElement("strong");
  who.textContent = message.name;
  const time = document.createElement("time");
  time.dateTime = message.at;
  time.textContent = new Date(message.at).toLocaleTimeString(document.documentElement.lang || undefined,
    { hour: "2-digit", minute: "2-digit" });
  const text = document.createElement("span");
  text.textContent = message.text;
  li.append(who, " ", time, document.createElement("br"), text);
  if (message.broadcast) li.classList.add("room-broadcast");  // written to every meeting
  return li;
}

function addChat(message) {
  if (!room.state || message.channel !== room.state.you.channel) return;
  el.chatLog.querySelector(".muted")?.remove();
  el.chatLog.append(chatItem(message));
  el.chatLog.scrollTop = el.chatLog.scrollHeight;
}

function showHistory(message) {
  if (!room.state || message.channel !== room.state.you.channel) return;
  el.chatLog.replaceChildren();
  el.chatLog.dataset.channel = message.channel;
  if (!message.messages.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = S.no_messages;
    el.chatLog.append(li);
  }
  for (const m of message.messages) el.chatLog.append(chatItem(m));
  el.chatLog.scrollTop = el.chatLog.scrollHeight;
}

function addNote(note) {
  el.notesLog.append(chatItem(note));
}

// --- controls ---------------------------------------------------------------------------------

const preview = () => { if (!room.joined) room.previewing = startPreview(); };
el.camera.onchange = preview;
el.mic.onchange = preview;
el.audioOnly.onchange = preview;

// Joining shows its progress on the button until the first state arrives (onState).
el.join.onclick = async () => {
  if (isWorking(el.join) || room.joined) return;
  working(el.join, { label: S.connecting, timeout: 0 });  // until the first state
  el.conn.textContent = S.connecting;
  await room.previewing;  // the camera chosen, or given up on
  room.joined = true;
  room.soundOnly = room.audioOnly;
  applySoundOnly();
  connect();
};

function applySoundOnly() {
  setLabel(el.soundOnly, room.soundOnly ? S.show_video_btn : S.sound_only_btn);
  el.soundOnly.setAttribute("aria-pressed", String(room.soundOnly));
}

// Sound only, switched during the session: the own camera is released (nothing is sent, the
// server stops forwarding it) and nobody's video is received; the call itself goes on.
// Switched back: the camera again, on the same publisher connection, and the others' video.
// The button works until the relay has answered the new offer (or at once, without one).
async function setSoundOnly(on) {
  working(el.soundOnly, { until: ["publish.answer", "error"] });
  room.soundOnly = on;
  room.audioOnly = on;
  applySoundOnly();
  send({ type: "media.receive", video: !on });
  try {
    const negotiate = on ? await stopCamera() : await startCamera();
    if (negotiate && room.pub) await renegotiatePublisher();
    else release(el.soundOnly);
  } catch (err) {
    release(el.soundOnly);
    throw err;
  } finally {
    applyTrackSwitches();
  }
}

async function stopCamera() {
  if (!room.local || !room.local.getVideoTracks().length) return false;
  for (const track of room.local.getVideoTracks()) {
    track.stop();
    room.local.removeTrack(track);
  }
  for (const t of videoSenders(room.pub)) {
    await t.sender.replaceTrack(null);
    t.direction = "inactive";  // the relay ends this source: the others see the camera off
  }
  return true;
}

async function startCamera() {
  if (!room.local || room.local.getVideoTracks().length) return false;
  let track;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: videoConstraints() });
    [track] = stream.getVideoTracks();
  } catch {
    alertUser(S.camera_failed);
    return false;
  }
  if (!room.soundOnly) {
    room.local.addTrack(track);
  } else {  // switched back to sound only meanwhile
    track.stop();
    return false;
  }
  applyTrackSwitches();
  if (!room.pub || room.pub.connectionState === "closed") return false;
  // A new line for the camera each time: the relay takes a line it once saw end as ended for
  // good (rooms/media/relay.py), so the inactive one is left as it is.
  room.pub.addTransceiver(track, { direction: "sendonly", streams: [room.local] });
  return true;
}

function videoSenders(pc) {
  if (!pc || pc.connectionState === "closed") return [];
  return pc.getTransceivers().filter((t) => t.receiver.track?.kind === "video"
    && (t.direction === "sendonly" || t.direction === "sendrecv"));
}

// A new publisher offer for the same connection; one at a time (the answer triggers the next).
async function renegotiatePublisher() {
  const pc = room.pub;
  if (!pc) return;
  if (pc.signalingState !== "stable") {
    room.renegotiate = true;
    return;
  }
  room.renegotiate = false;
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  send({ type: "publish.offer", sdp: pc.localDescription.sdp });
}

el.soundOnly.onclick = () => {
  if (isWorking(el.soundOnly)) return;
  setSoundOnly(!room.soundOnly).catch((err) => console.error(err));
};
el.mute.onclick = () => { room.muted = !room.muted; applyTrackSwitches(); };
el.cameraToggle.onclick = () => { room.cameraOff = !room.cameraOff; applyTrackSwitches(); };
el.call.onclick = () => { send({ type: "call_mediator" }); alertUser(S.called); };
el.chatJump.onclick = () => {
  el.chat.scrollIntoView({ block: "end" });
  el.chatText.focus({ preventScroll: true });
};
el.leave.onclick = () => {
  if (isWorking(el.leave)) return;
  working(el.leave);
  room.leaving = true;
  send({ type: "leave" });
  setTimeout(() => room.ws?.close(), 500);
};
el.recall.onclick = () => {
  if (isWorking(el.recall)) return;
  working(el.recall, { until: ["state", "error"] });
  send({ type: "recall" });
};

function setTimer(seconds, button) {
  const channel = room.state?.you.channel;
  if (!channel || isWorking(button)) return;
  working(button, { until: ["state", "error"] });
  send({ type: "timer.set", channel, seconds });
}
el.timerForm.onsubmit = (event) => {
  event.preventDefault();
  const minutes = Number(el.timerMinutes.value);
  if (minutes >= 1 && minutes <= 240) setTimer(Math.round(minutes * 60), submitOf(el.timerForm));
};
el.timerStop.onclick = () => setTimer(0, el.timerStop);

el.broadcastForm.onsubmit = (event) => {
  event.preventDefault();
  const text = el.broadcastText.value.trim();
  if (!text || isWorking(submitOf(el.broadcastForm))) return;
  working(submitOf(el.broadcastForm), { until: ["chat", "error"] });
  send({ type: "broadcast", text });
  el.broadcastText.value = "";
};

el.chatForm.onsubmit = (event) => {
  event.preventDefault();
  const text = el.chatText.value.trim();
  if (!text || !room.state?.you.channel || isWorking(submitOf(el.chatForm))) return;
  working(submitOf(el.chatForm), { until: ["chat", "error"] });
  send({ type: "chat", channel: room.state.you.channel, text });
  el.chatText.value = "";
};

el.notesForm.onsubmit = (event) => {
  event.preventDefault();
  const text = el.notesText.value.trim();
  if (!text || isWorking(submitOf(el.notesForm))) return;
  working(submitOf(el.notesForm), { until: ["note", "error"] });
  send({ type: "note", text });
  el.notesText.value = "";
};

el.caucusForm.onsubmit = (event) => {
  event.preventDefault();
  const members = [...el.caucusPeople.querySelectorAll("input:checked")].map((i) => Number(i.value));
  if (!members.length) return alertUser(S.open_caucus_empty);
  if (isWorking(submitOf(el.caucusForm))) return undefined;
  working(submitOf(el.caucusForm), { until: ["state", "error"] });
  send({ type: "caucus.open", members });
  for (const box of el.caucusPeople.querySelectorAll("input")) box.checked = false;
  return undefined;
};

window.addEventListener("pagehide", () => {
  if (room.ws && room.ws.readyState === WebSocket.OPEN) {
    room.leaving = true;
    send({ type: "leave" });
  }
});

if (config.me.role === "observer") el.audioOnly.closest("label").hidden = true;
room.previewing = startPreview();
