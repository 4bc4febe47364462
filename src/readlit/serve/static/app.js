// The readlit page: upload (or record) -> follow the job's websocket -> play segments with Media Source Extensions.
"use strict";

const $ = (id) => document.getElementById(id);
const files = { image: null, audio: null };
let socket = null;
let stopRecording = null;
let jobId = null;

function showError(message) {
  $("error").textContent = message || "";
}

function showStatus(message) {
  $("status").textContent = message;
}

function busy(running) {
  $("generate").disabled = running;
  $("record").disabled = running;
  $("cancel").disabled = !running;
}

function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

function settings() {
  const out = { seed: Number($("seed").value || 0), guidance: $("guidance").value };
  for (const name of ["steps", "audio_scale", "ref_scale"]) {
    if ($(name).value !== "") out[name] = Number($(name).value);
  }
  return out;
}

async function loadDefaults() {
  const response = await fetch("/v1/health");
  const health = await response.json();
  $("steps").value = health.sampler.steps;
  $("guidance").value = health.sampler.guidance;
  $("audio_scale").value = health.sampler.audio_scale;
  $("ref_scale").value = health.sampler.ref_scale;
}

function choose(kind, file) {
  files[kind] = file;
  const url = URL.createObjectURL(file);
  if (kind === "image") {
    $("image-preview").src = url;
  } else {
    $("audio-preview").src = url;
    $("audio-preview").hidden = false;
  }
}

function dropZone(kind) {
  const zone = $(kind + "-drop");
  $(kind).addEventListener("change", () => $(kind).files[0] && choose(kind, $(kind).files[0]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) choose(kind, event.dataTransfer.files[0]);
  });
}

// Media segments go into one SourceBuffer in order; playback starts with the first clip.
class Player {
  constructor(video, mime) {
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      throw new Error("this browser cannot play " + mime + " as it streams; download the mp4 when it is done");
    }
    this.video = video;
    this.queue = [];
    this.appended = 0;
    this.ending = false;
    this.source = new MediaSource();
    video.src = URL.createObjectURL(this.source);
    this.source.addEventListener("sourceopen", () => {
      this.buffer = this.source.addSourceBuffer(mime);
      this.buffer.addEventListener("updateend", () => this.pump());
      this.pump();
    }, { once: true });
  }

  append(data) {
    this.queue.push(data);
    this.pump();
  }

  end() {
    this.ending = true;
    this.pump();
  }

  pump() {
    if (!this.buffer || this.buffer.updating) return;
    if (this.queue.length) {
      this.buffer.appendBuffer(this.queue.shift());
      this.appended += 1;
      if (this.appended === 2) this.play();
    } else if (this.ending && this.source.readyState === "open") {
      this.source.endOfStream();
    }
  }

  play() {
    this.video.play().catch(() => {
      this.video.muted = true;  // autoplay with sound needs a gesture in some browsers; muted playback never does
      this.video.play();
    });
  }
}

function follow(ws) {
  let player = null;
  ws.binaryType = "arraybuffer";
  ws.onmessage = (message) => {
    if (typeof message.data !== "string") {
      if (player) player.append(message.data);
      return;
    }
    const event = JSON.parse(message.data);
    if (event.type === "queued") {
      jobId = event.id;
      showStatus("queued");
    } else if (event.type === "start") {
      try {
        player = new Player($("player"), event.mime);
      } catch (error) {
        showError(error.message);
      }
      showStatus("generating the first clip...");
    } else if (event.type === "clip") {
      const total = event.clips_total;
      if (total) $("progress").value = event.clips_done / total;
      else $("progress").removeAttribute("value");
      showStatus(`clip ${event.clips_done}${total ? " of " + total : ""}: ${event.seconds.toFixed(2)} s of video`);
    } else if (event.type === "done") {
      if (player) player.end();
      $("progress").value = 1;
      $("download").href = event.video_url;
      $("download").hidden = false;
      showStatus("done");
      busy(false);
    } else if (event.type === "failed" || event.type === "cancelled" || event.type === "error") {
      showError(event.error || "the job was " + event.type);
      showStatus(event.type);
      busy(false);
    }
  };
  ws.onclose = () => { if (stopRecording) stopRecording(); };
}

function reset() {
  showError("");
  $("download").hidden = true;
  $("progress").value = 0;
  jobId = null;
}

async function generateFromFile() {
  reset();
  if (!files.image || !files.audio) {
    showError("pick a portrait and a speech file first");
    return;
  }
  busy(true);
  const form = new FormData();
  form.append("image", files.image);
  form.append("audio", files.audio);
  for (const [name, value] of Object.entries(settings())) form.append(name, value);
  form.append("stream", "true");
  showStatus("uploading...");
  const response = await fetch("/v1/videos", { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) {
    showError(body.error);
    showStatus("refused");
    busy(false);
    return;
  }
  jobId = body.id;
  socket = new WebSocket(wsUrl(body.stream_url));
  follow(socket);
}

async function recordFromMicrophone() {
  reset();
  if (!files.image) {
    showError("pick a portrait first");
    return;
  }
  busy(true);
  const media = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  const input = context.createMediaStreamSource(media);
  const tap = context.createScriptProcessor(4096, 1, 1);
  socket = new WebSocket(wsUrl("/v1/streams"));
  follow(socket);
  socket.onopen = async () => {
    socket.send(JSON.stringify({ type: "start", sample_rate: context.sampleRate, format: "f32le", ...settings() }));
    socket.send(await files.image.arrayBuffer());
    tap.onaudioprocess = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(new Float32Array(event.inputBuffer.getChannelData(0)).buffer);
    };
    input.connect(tap);
    tap.connect(context.destination);
  };
  $("cancel").textContent = "Stop recording";
  stopRecording = () => {
    stopRecording = null;
    tap.disconnect();
    input.disconnect();
    media.getTracks().forEach((track) => track.stop());
    context.close();
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end" }));
    $("cancel").textContent = "Stop";
  };
}

async function stop() {
  if (stopRecording) {
    stopRecording();
    return;
  }
  if (jobId) await fetch("/v1/videos/" + jobId, { method: "DELETE" });
}

dropZone("image");
dropZone("audio");
$("generate").addEventListener("click", () => generateFromFile().catch((error) => { showError(error.message); busy(false); }));
$("record").addEventListener("click", () => recordFromMicrophone().catch((error) => { showError(error.message); busy(false); }));
$("cancel").addEventListener("click", stop);
busy(false);
loadDefaults();
