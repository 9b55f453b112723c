// The browser's half of fer_utils.camera.CameraWidget (an anywidget ES module): the camera, the frames
// sent to the kernel, the boxes and probabilities drawn over the live image, and in collect mode a button
// (and a key, 1-7) per emotion that has the kernel save the face in view. See camera.py.

const CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
const COLOURS = ["#e6194b", "#3cb44b", "#911eb4", "#ffe119", "#a9a9a9", "#4363d8", "#f58231"];
const REPLY_TIMEOUT_MS = 10000; // a reply that never comes (the kernel restarted) stops blocking the next frame
const ROW = 15, LABEL_WIDTH = 96, BAR_WIDTH = 90; // the panel under a face: one labelled bar per emotion

function barLabel(face, c) {
  return `${c} ${Math.round(100 * face.probabilities[c])}%`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const root = element("div", "fer-camera");
  const bar = element("div", "fer-camera-bar");
  const toggle = element("button", "fer-camera-toggle", "Start camera");
  const snap = element("button", "fer-camera-snapshot", "Snapshot");
  const status = element("span", "fer-camera-status", "camera off");
  const note = element("span", "fer-camera-note"); // what a click did (a snapshot saved), beside the live status
  snap.disabled = true;
  bar.append(toggle, snap, status, note);
  const video = element("video", "fer-camera-video");
  video.muted = true;
  video.playsInline = true;
  const canvas = element("canvas", "fer-camera-view");
  canvas.width = 640;
  canvas.height = 480;
  root.append(bar, canvas);
  el.append(root);
  root.dataset.camera = "off";

  const view = canvas.getContext("2d");
  const small = document.createElement("canvas");
  let stream = null, raf = null, waiting = false, sentAt = 0, lastSent = 0, frameId = 0;
  let faces = [], scale = 1;

  function blank(text) { // the view without a camera: dark (the canvas's background), saying what to do
    view.clearRect(0, 0, canvas.width, canvas.height);
    view.fillStyle = "#aaa";
    view.font = "18px sans-serif";
    view.textAlign = "center";
    view.fillText(text, canvas.width / 2, canvas.height / 2);
    view.textAlign = "start";
  }
  blank("camera off: press Start camera");

  function collectMode() { // a button per emotion, its count, and a hint line above the view; keys 1-7
    const dir = model.get("collect_dir");
    const row = element("div", "fer-camera-bar fer-camera-collect");
    const buttons = CLASSES.map((c, k) => {
      const button = element("button", "fer-camera-emotion");
      button.dataset.emotion = c;
      button.title = `save the face in view to ${dir}/${c}/ (key ${k + 1})`;
      button.disabled = true;
      button.addEventListener("click", () => model.send({ type: "collect", emotion: c }));
      return button;
    });
    row.append(...buttons);
    const hint = element("div", "fer-camera-hint", "collect mode: an emotion's button, or its key 1-7 while the widget"
      + ` has focus (click it first), saves the face in view (exactly one) to ${dir}/<emotion>/`);
    root.classList.add("fer-camera-collecting");
    root.tabIndex = 0; // focusable: the keys reach it
    root.insertBefore(row, canvas);
    root.insertBefore(hint, canvas);
    root.addEventListener("keydown", (event) => {
      const k = Number(event.key) - 1;
      if (!stream || !(k >= 0 && k < CLASSES.length) || event.ctrlKey || event.metaKey || event.altKey) return;
      event.preventDefault(); // JupyterLab's own shortcuts skip a key handled here
      model.send({ type: "collect", emotion: CLASSES[k] });
    });
    return buttons;
  }

  function showCounts(counts) {
    collectButtons.forEach((button, k) => (button.textContent = `${k + 1} ${CLASSES[k]}: ${counts[CLASSES[k]]}`));
    root.dataset.counts = JSON.stringify(counts);
  }
  const collectButtons = model.get("collect_dir") ? collectMode() : [];
  if (collectButtons.length) showCounts(model.get("counts"));

  function say(text) {
    status.textContent = text;
    model.set("status", text);
    model.save_changes();
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("no camera: this browser gives no camera to this page (it needs https or localhost)");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (err) {
      const why = err && err.name === "NotAllowedError" ? "permission denied" : (err && (err.message || err.name)) || "unavailable";
      say(`no camera: ${why}`);
      return;
    }
    video.srcObject = stream;
    await video.play();
    canvas.width = video.videoWidth || 640;
    canvas.height = video.videoHeight || 480;
    model.send({ type: "reset" });
    faces = [];
    toggle.textContent = "Stop camera";
    snap.disabled = false;
    collectButtons.forEach((button) => (button.disabled = false));
    root.dataset.camera = "on";
    model.set("running", true);
    say("camera on, waiting for the first frame's answer");
    raf = requestAnimationFrame(loop);
  }

  function stop() {
    if (raf !== null) cancelAnimationFrame(raf);
    raf = null;
    if (stream) {
      const tracks = stream.getTracks();
      tracks.forEach((track) => track.stop());
      root.dataset.released = String(tracks.every((track) => track.readyState === "ended"));
    }
    stream = null;
    video.srcObject = null;
    waiting = false;
    faces = [];
    toggle.textContent = "Start camera";
    snap.disabled = true;
    collectButtons.forEach((button) => (button.disabled = true));
    root.dataset.camera = "off";
    model.set("running", false);
    blank("camera stopped: press Start camera to go on");
    say("camera off");
  }

  function sendFrame(now) {
    const width = model.get("frame_width");
    small.width = width;
    small.height = Math.round((width * video.videoHeight) / video.videoWidth);
    small.getContext("2d").drawImage(video, 0, 0, small.width, small.height);
    scale = canvas.width / small.width;
    waiting = true;
    sentAt = now;
    lastSent = now;
    const id = ++frameId;
    small.toBlob(async (blob) => {
      if (!blob || !stream) { waiting = false; return; }
      model.send({ type: "frame", id }, undefined, [await blob.arrayBuffer()]);
    }, "image/jpeg", 0.85);
  }

  function draw() {
    view.drawImage(video, 0, 0, canvas.width, canvas.height);
    view.lineWidth = 3;
    for (const face of faces) {
      const [x, y, w, h] = face.box.map((v) => v * scale);
      const colour = COLOURS[CLASSES.indexOf(face.emotion)];
      view.strokeStyle = colour;
      view.strokeRect(x, y, w, h);
      const emotion = barLabel(face, face.emotion);
      view.font = "15px sans-serif";
      view.fillStyle = colour;
      view.fillRect(x, y - 20, Math.max(60, view.measureText(emotion).width + 8), 20);
      view.fillStyle = "#000";
      view.fillText(emotion, x + 4, y - 5);
      bars(face, x, y + h + 4);
    }
  }

  function bars(face, x, y) { // the smoothed probabilities under the box, kept inside the view
    const width = LABEL_WIDTH + BAR_WIDTH + 8, height = ROW * CLASSES.length + 6;
    x = Math.max(0, Math.min(x, canvas.width - width));
    y = Math.max(0, Math.min(y, canvas.height - height));
    view.fillStyle = "rgba(0, 0, 0, 0.6)";
    view.fillRect(x, y, width, height);
    view.font = "12px sans-serif";
    CLASSES.forEach((c, k) => {
      const top = y + 3 + ROW * k;
      view.fillStyle = "#fff";
      view.fillText(barLabel(face, c), x + 4, top + 11);
      view.fillStyle = COLOURS[k];
      view.fillRect(x + LABEL_WIDTH, top + 2, BAR_WIDTH * face.probabilities[c], ROW - 4);
    });
  }

  function loop(now) {
    if (!stream) return;
    draw();
    const interval = 1000 / model.get("max_fps");
    if (waiting && now - sentAt > REPLY_TIMEOUT_MS) waiting = false;
    if (!waiting && now - lastSent >= interval && video.readyState >= 2) sendFrame(now);
    raf = requestAnimationFrame(loop);
  }

  model.on("msg:custom", (msg) => {
    if (msg.type === "result" || msg.type === "dropped" || msg.type === "bad frame") {
      if (msg.id !== frameId) return; // an answer to a frame of an earlier session
      waiting = false;
    }
    if (msg.type === "result" && stream) {
      faces = msg.faces;
      const latency = performance.now() - sentAt;
      const names = faces.map((f) => f.emotion).join(", ") || "no face";
      // msg.rate: the kernel's frame rate, "starting…" until it is measured
      status.textContent = `${msg.rate}, ${Math.round(latency)} ms round trip (kernel ${Math.round(msg.kernel_ms)} ms): ${names}`;
      root.dataset.faces = JSON.stringify(faces.map((f) => f.emotion));
      root.dataset.bars = JSON.stringify(faces.map((f) => CLASSES.map((c) => barLabel(f, c))));
      root.dataset.fps = msg.fps.toFixed(2);
    } else if (msg.type === "saved") {
      note.textContent = `snapshot saved: ${msg.path}`;
    } else if (msg.type === "collected") {
      note.textContent = `${msg.emotion} saved: ${msg.path}`;
      showCounts(msg.counts);
    } else if (msg.type === "not collected") {
      note.textContent = `not saved: ${msg.reason}`;
    } else if (msg.type === "error") {
      note.textContent = `error: ${msg.message}`;
    }
  });

  toggle.addEventListener("click", () => (stream ? stop() : start()));
  snap.addEventListener("click", () => {
    canvas.toBlob(async (blob) => model.send({ type: "snapshot" }, undefined, [await blob.arrayBuffer()]), "image/png");
  });
  return () => stop(); // the view is removed (cell cleared, notebook closed): release the camera
}

export default { render };
