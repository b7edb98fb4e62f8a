// The device check: camera, microphone, speaker, and the connection to the platform's media
// relay (a short call to an echo on the server: sound goes there and back over the same path a
// session's media takes). Each step says what works and, when something does not, what to do.

const config = JSON.parse(document.getElementById("check-config").textContent);
const S = config.strings;
const $ = (id) => document.getElementById(id);

function show(step, status, text) {
  const item = $(`check-${step}`);
  item.dataset.status = status;
  item.querySelector(".check-result").textContent = text;
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_r, reject) =>
    setTimeout(() => reject(new Error("timeout")), ms))]);
}

function advice(error, kind) {
  if (error.name === "NotAllowedError") return S[`${kind}_denied`];
  if (error.name === "NotFoundError" || error.name === "OverconstrainedError") return S[`${kind}_missing`];
  if (error.name === "NotReadableError") return S[`${kind}_busy`];
  return S[`${kind}_failed`];
}

async function checkCamera() {
  show("camera", "running", S.checking);
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const video = $("check-preview");
    video.srcObject = stream;
    await withTimeout(new Promise((resolve) => {
      const ready = () => (video.videoWidth > 0 ? resolve() : requestAnimationFrame(ready));
      ready();
    }), 10000);
    show("camera", "ok", S.camera_ok);
  } catch (error) {
    show("camera", "fail", advice(error, "camera"));
  }
}

async function checkMicrophone() {
  show("microphone", "running", S.speak_now);
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const meter = $("check-meter");
    const heard = await new Promise((resolve) => {
      const deadline = Date.now() + 10000;
      const listen = () => {
        analyser.getFloatTimeDomainData(samples);
        const level = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
        meter.value = Math.min(1, level * 10);
        if (level > 0.01) resolve(true);
        else if (Date.now() > deadline) resolve(false);
        else requestAnimationFrame(listen);
      };
      listen();
    });
    stream.getTracks().forEach((t) => t.stop());
    await context.close();
    show("microphone", heard ? "ok" : "fail", heard ? S.microphone_ok : S.microphone_silent);
  } catch (error) {
    show("microphone", "fail", advice(error, "microphone"));
  }
}

function tone(seconds) {
  const context = new AudioContext();
  const oscillator = context.createOscillator();
  oscillator.frequency.value = 440;
  oscillator.connect(context.destination);
  oscillator.start();
  oscillator.stop(context.currentTime + seconds);
  oscillator.onended = () => context.close();
}

$("check-play").onclick = () => {
  tone(1);
  show("speaker", "running", S.did_you_hear);
  $("check-heard").hidden = false;
};
$("check-heard-yes").onclick = () => {
  $("check-heard").hidden = true;
  show("speaker", "ok", S.speaker_ok);
};
$("check-heard-no").onclick = () => {
  $("check-heard").hidden = true;
  show("speaker", "fail", S.speaker_silent);
};

async function checkConnection() {
  show("connection", "running", S.checking);
  // A generated tone, so that the connection is tested even without a microphone.
  const context = new AudioContext();
  const oscillator = context.createOscillator();
  const destination = context.createMediaStreamDestination();
  oscillator.connect(destination);
  oscillator.start();
  const pc = new RTCPeerConnection({ iceServers: config.ice_servers });
  try {
    pc.addTrack(destination.stream.getAudioTracks()[0], destination.stream);
    const echoed = new Promise((resolve) => { pc.ontrack = () => resolve(); });
    const connected = new Promise((resolve, reject) => {
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "connected") resolve();
        if (pc.connectionState === "failed") reject(new Error("failed"));
      };
    });
    const started = performance.now();
    await pc.setLocalDescription(await pc.createOffer());
    await withTimeout(new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
    }), 5000).catch(() => {});  // send what was gathered by then
    const token = document.querySelector('meta[name="csrf-token"]');
    const response = await fetch(config.echo, {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": token ? token.content : "" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp }),
    });
    if (!response.ok) throw new Error(`echo ${response.status}`);
    await pc.setRemoteDescription({ type: "answer", sdp: (await response.json()).sdp });
    await withTimeout(Promise.all([echoed, connected]), 15000);
    const setup = Math.round(performance.now() - started);
    // Let the echo run a moment, then read what came back.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    let rtt = null, received = 0, lost = 0;
    (await pc.getStats()).forEach((report) => {
      if (report.type === "candidate-pair" && report.nominated && report.currentRoundTripTime !== undefined) {
        rtt = Math.round(report.currentRoundTripTime * 1000);
      }
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        received += report.packetsReceived || 0;
        lost += report.packetsLost || 0;
      }
    });
    if (!received) throw new Error("nothing came back");
    const loss = Math.round((100 * lost) / (received + lost));
    const text = S.connection_ok.replace("%(rtt)s", rtt === null ? "?" : rtt)
      .replace("%(loss)s", loss).replace("%(setup)s", setup);
    show("connection", loss > 10 || (rtt !== null && rtt > 600) ? "weak" : "ok",
      loss > 10 || (rtt !== null && rtt > 600) ? `${text} ${S.connection_weak}` : text);
    $("check-connection").dataset.received = String(received);
  } catch (_error) {
    show("connection", "fail", S.connection_failed);
  } finally {
    pc.close();
    oscillator.stop();
    context.close();
  }
}

$("check-start").onclick = async () => {
  $("check-start").disabled = true;
  await checkCamera();
  await checkMicrophone();
  if (config.media) await checkConnection();
  else show("connection", "fail", S.connection_unavailable);
  $("check-start").disabled = false;
};
