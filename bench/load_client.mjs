// Load clients for bench/drafts_bench.py: raw y-websocket frames over `ws`, no Yjs.
//
// One process drives every room: per room one writer and (clients - 1) readers. The writer sends
// pre-encoded sync Update frames (made by pycrdt, read from a file) at a fixed rate; each inserted
// text carries a marker "@" + 8 digits (the update's sequence number), so a reader finds which
// update a message holds and computes latency against the send time kept in this process.
// Input: one JSON object on stdin. Output: one JSON object on stdout (diagnostics on stderr).

import { readFileSync } from 'node:fs'
import WebSocket from 'ws'

const cfg = JSON.parse(readFileSync(0, 'utf8'))
// {rooms: [url...], clients, rate, warmup, duration, drain, deflate, headers, pid, frames}

const log = (...a) => process.stderr.write(a.join(' ') + '\n')
const now = () => performance.now()
const CLK_TCK = 100 // Linux USER_HZ

const serverTimes = () => {
  // utime and stime (fields 14 and 15) of the whole process, all threads included, in seconds.
  const stat = readFileSync(`/proc/${cfg.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) / CLK_TCK, sys: Number(fields[12]) / CLK_TCK }
}
const serverCpu = () => { const t = serverTimes(); return t.user + t.sys }

// Frames file: [u32 LE length][frame] repeated; frame i carries marker i.
const frames = []
{
  const buf = readFileSync(cfg.frames)
  for (let off = 0; off < buf.length;) {
    const n = buf.readUInt32LE(off)
    frames.push(buf.subarray(off + 4, off + 4 + n))
    off += 4 + n
  }
}

const AT = 0x40
const ZERO = 0x30
// Every sequence number carried by a message (a server may merge updates into one message).
const markers = (m) => {
  const out = []
  for (let i = m.indexOf(AT); i !== -1 && i + 8 < m.length; i = m.indexOf(AT, i + 1)) {
    let v = 0
    let j = 1
    for (; j <= 8; j++) {
      const d = m[i + j] - ZERO
      if (d < 0 || d > 9) break
      v = v * 10 + d
    }
    if (j === 9) out.push(v)
  }
  return out
}

const STEP1_EMPTY = Buffer.from([0, 0, 1, 0]) // sync, step 1, state vector {} (1 byte: 0 entries)
const STEP2_EMPTY = Buffer.from([0, 1, 2, 0, 0]) // sync, step 2, empty update (0 structs, 0 deletes)

const sendTimes = cfg.rooms.map(() => new Float64Array(frames.length).fill(-1))
const total = frames.length
let timedFrom = Infinity // first sequence number of the timed phase
let timedTo = -1 // one past the last
const latencies = [] // ms, timed phase only
let received = 0 // timed (reader, update) pairs received
let receivedTotal = 0
let unknown = 0 // update messages without any marker (e.g. other content)

function connect (roomIdx, url, role) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: cfg.headers,
      // ws runs at most 10 zlib calls at once by default (process-wide): 50 clients
      // inflating 8000 messages/s then queue in the client, not in the server measured.
      perMessageDeflate: cfg.deflate ? { threshold: 0, concurrencyLimit: 1000 } : false
    })
    ws.binaryType = 'nodebuffer'
    const seen = role === 'reader' ? new Uint8Array(total) : null
    let synced = false
    ws.on('open', () => ws.send(STEP1_EMPTY))
    ws.on('error', (e) => reject(e))
    ws.on('unexpected-response', (_req, res) => reject(new Error(`${url}: HTTP ${res.statusCode}`)))
    ws.on('close', (code, reason) => {
      if (!stopping) log(`closed ${role} room ${roomIdx}: ${code} ${reason}`)
    })
    ws.on('message', (m) => {
      const t = now()
      if (m[0] !== 0) return // awareness and others
      const kind = m[1]
      if (kind === 0) { // server's sync step 1: answer with our (empty) state
        ws.send(STEP2_EMPTY)
        return
      }
      if (kind === 1 && !synced) {
        synced = true
        resolve(ws)
      }
      if (role !== 'reader') return
      const seqs = markers(m)
      if (seqs.length === 0 && kind === 2) unknown++
      const times = sendTimes[roomIdx]
      for (const s of seqs) {
        if (s >= total || seen[s]) continue
        seen[s] = 1
        receivedTotal++
        if (s >= timedFrom && s < timedTo && times[s] >= 0) {
          latencies.push(t - times[s])
          received++
        }
      }
    })
  })
}

let stopping = false
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main () {
  const R = cfg.rooms.length
  const writers = []
  const all = []
  // Connect room by room (readers first, as when people open a draft before someone types).
  const t0 = now()
  for (let r = 0; r < R; r++) {
    for (let c = 1; c < cfg.clients; c++) all.push(await connect(r, cfg.rooms[r], 'reader'))
    const w = await connect(r, cfg.rooms[r], 'writer')
    writers.push(w)
    all.push(w)
  }
  const connectMs = now() - t0
  const extensions = all[0].extensions || ''

  // Pacing: room r sends its i-th update at start + (i + r / R) / rate seconds.
  const period = 1000 / cfg.rate
  const warmupN = Math.round(cfg.warmup * cfg.rate)
  const timedN = Math.round(cfg.duration * cfg.rate)
  if (warmupN + timedN > total) throw new Error(`need ${warmupN + timedN} frames, have ${total}`)
  const next = new Int32Array(R) // next sequence number per room
  let start = now() + 20
  let phaseEnd = warmupN
  let late = 0 // sends more than 1 period behind schedule
  const run = () => new Promise((resolve) => {
    const tick = () => {
      const t = now()
      let pending = false
      let soonest = Infinity
      for (let r = 0; r < R; r++) {
        while (next[r] < phaseEnd) {
          const due = start + (next[r] + r / R) * period
          if (due > t) { soonest = Math.min(soonest, due); break }
          if (t - due > period) late++
          sendTimes[r][next[r]] = now()
          writers[r].send(frames[next[r]])
          next[r]++
        }
        if (next[r] < phaseEnd) pending = true
      }
      if (!pending) return resolve()
      setTimeout(tick, Math.max(0, soonest - now()))
    }
    const first = start - now()
    setTimeout(tick, Math.max(0, first))
  })

  // Warm-up (not measured).
  await run()
  await sleep(300)
  // Timed phase: sequence numbers [warmupN, warmupN + timedN) are measured.
  timedFrom = warmupN
  timedTo = warmupN + timedN
  phaseEnd = timedTo
  late = 0
  start = now() + 20 - warmupN * period
  const expected = R * (cfg.clients - 1) * timedN
  const cpu0 = serverCpu()
  const sys0 = serverTimes().sys
  const client0 = process.cpuUsage()
  const w0 = now() + 20
  await run()
  const cpuSend = serverCpu()
  const wSend = now()
  // Drain: wait until every reader has every timed update, or the drain time runs out.
  const drainUntil = now() + cfg.drain * 1000
  while (received < expected && now() < drainUntil) await sleep(5)
  const cpu1 = serverCpu()
  const sys1 = serverTimes().sys
  const w1 = now()
  const client1 = process.cpuUsage(client0)
  stopping = true
  for (const ws of all) ws.terminate()

  latencies.sort((a, b) => a - b)
  const pct = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p / 100 * latencies.length))] : null
  const out = {
    extensions,
    connect_ms: connectMs,
    updates_sent: R * timedN,
    deliveries_expected: expected,
    deliveries: received,
    unknown_messages: unknown,
    late_sends: late,
    send_seconds: (wSend - w0) / 1000,
    drain_seconds: (w1 - wSend) / 1000,
    server_cpu_send: cpuSend - cpu0,
    server_cpu_total: cpu1 - cpu0,
    server_sys_total: sys1 - sys0,
    client_cpu: (client1.user + client1.system) / 1e6,
    p50: pct(50),
    p95: pct(95),
    p99: pct(99),
    max: latencies.length ? latencies[latencies.length - 1] : null
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
}

main().catch((e) => { log(String(e && e.stack || e)); process.exit(1) })
