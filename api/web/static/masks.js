// Masks for a training: boxes drawn on a frame of the clip, missing frames, or an uploaded
// mask file, built into the `mask` the API's job body takes (regions / missing_frames / upload).
// Boxes are fractions of the square the model trains on (the centre crop, or the whole frame
// stretched), so the editor shows exactly that square.
const $ = (id) => document.getElementById(id);
const MIN_SIDE = 0.02; // a drag smaller than this (of the square) is a click, not a box

/** A mistake in a mask field, shown next to that field like a 422's. */
export class FieldError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** '3,5,10-14' -> [3, 5, 10, 11, 12, 13, 14], the same rule as the CLI's frame lists. */
export function parseFrames(text) {
  const frames = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!match) throw new Error(`"${part}" is not a frame number or a range like 10-14`);
    const [first, last] = [Number(match[1]), Number(match[2] ?? match[1])];
    if (last < first) throw new Error(`the range ${part} runs backwards`);
    for (let f = first; f <= last; f += 1) frames.push(f);
  }
  if (!frames.length) throw new Error("name at least one frame, e.g. 3,5,10-14");
  return frames;
}

function clamp(value) {
  return Math.min(1, Math.max(0, value));
}

function round(value) {
  return Math.round(value * 10_000) / 10_000;
}

// Two corners -> a box inside the square, in fractions.
function boxFrom(a, b) {
  const x = round(Math.min(a.x, b.x));
  const y = round(Math.min(a.y, b.y));
  const width = round(Math.min(Math.abs(a.x - b.x), 1 - x));
  const height = round(Math.min(Math.abs(a.y - b.y), 1 - y));
  return { x, y, width, height };
}

function percent(value) {
  return `${Math.round(value * 1000) / 10}%`;
}

function describeBox(box, index) {
  const where = `Box ${index + 1}: from ${percent(box.x)}, ${percent(box.y)}, ${percent(box.width)} wide, ${percent(box.height)} high`;
  return `${where}, ${box.frames ? `frames ${box.frames.join(", ")}` : "every frame"}`;
}

/** The square of a `width` x `height` frame that training sees: [sx, sy, side_x, side_y]. */
export function trainedSquare(width, height, stretch) {
  if (stretch) return [0, 0, width, height];
  const side = Math.min(width, height);
  return [(width - side) / 2, (height - side) / 2, side, side];
}

export class MaskEditor {
  /** deps: upload(file) -> video row; source(videoId) -> a URL the canvas may read. */
  constructor(deps) {
    this.deps = deps;
    this.boxes = [];
    this.draft = null;
    this.start = null;
    this.video = null; // the row of the clip shown
    this.uploaded = null; // the row of an uploaded mask file
    this.canvas = $("mask-canvas");
    this.frameVideo = document.createElement("video");
    this.frameVideo.muted = true;
    this.frameVideo.preload = "auto";
    this.frameVideo.addEventListener("loadeddata", () => this.showFrame());
    this.frameVideo.addEventListener("seeked", () => this.draw());
    this.bind();
  }

  bind() {
    for (const radio of document.querySelectorAll("input[name=mask-kind]")) {
      radio.addEventListener("change", () => this.showPanel());
    }
    $("mask-frame").addEventListener("input", () => this.showFrame());
    $("mask-box-add").addEventListener("click", () => this.addTypedBox());
    $("mask-file").addEventListener("change", (event) => this.uploadFile(event.target.files[0]));
    this.canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    this.canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    this.canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
  }

  get kind() {
    return document.querySelector("input[name=mask-kind]:checked").value;
  }

  showPanel() {
    for (const [kind, panel] of [["regions", "mask-regions"], ["missing_frames", "mask-missing"], ["upload", "mask-upload"]]) {
      $(panel).hidden = this.kind !== kind;
    }
    if (this.kind === "regions") this.draw();
  }

  /** Show a frame of this clip (its row from the API) to draw on. */
  async useClip(video) {
    if (!video || video.id === this.video?.id) return;
    this.video = video;
    $("mask-frame").max = String(Math.max(video.frames - 1, 0));
    $("mask-frame").value = "0";
    this.frameVideo.src = await this.deps.source(video.id);
  }

  showFrame() {
    const index = Number($("mask-frame").value);
    $("mask-frame-label").textContent = `Frame shown: ${index}`;
    const fps = this.video?.fps || 25;
    if (this.frameVideo.readyState) this.frameVideo.currentTime = (index + 0.5) / fps;
  }

  // The square training sees: the resize field's, else the goal's default (an inpainting
  // stretches the whole frame, as `dyngen inpaint` does).
  stretched() {
    const resize = $("train-resize")?.value ?? "";
    if (resize) return resize === '"stretch"';
    return document.querySelector("input[name=purpose]:checked")?.value === "inpaint";
  }

  draw() {
    const context = this.canvas.getContext("2d");
    const side = this.canvas.width;
    context.fillStyle = "#222";
    context.fillRect(0, 0, side, side);
    const frame = this.frameVideo;
    if (frame.readyState >= 2) {
      const [sx, sy, sw, sh] = trainedSquare(frame.videoWidth, frame.videoHeight, this.stretched());
      context.imageSmoothingEnabled = false; // tiny clips: show their pixels
      context.drawImage(frame, sx, sy, sw, sh, 0, 0, side, side);
    }
    this.boxes.forEach((box, i) => this.drawBox(context, box, String(i + 1)));
    if (this.draft) this.drawBox(context, this.draft, "");
  }

  drawBox(context, box, label) {
    const side = this.canvas.width;
    context.fillStyle = "rgba(0, 0, 0, 0.55)";
    context.fillRect(box.x * side, box.y * side, box.width * side, box.height * side);
    context.strokeStyle = "#f0a500";
    context.lineWidth = 2;
    context.strokeRect(box.x * side, box.y * side, box.width * side, box.height * side);
    context.fillStyle = "#fff";
    context.font = "bold 16px system-ui, sans-serif";
    context.fillText(label, box.x * side + 4, box.y * side + 18);
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: clamp((event.clientX - rect.left) / rect.width), y: clamp((event.clientY - rect.top) / rect.height) };
  }

  pointerDown(event) {
    this.canvas.setPointerCapture(event.pointerId);
    this.start = this.point(event);
  }

  pointerMove(event) {
    if (!this.start) return;
    this.draft = boxFrom(this.start, this.point(event));
    this.draw();
  }

  pointerUp(event) {
    if (!this.start) return;
    const box = boxFrom(this.start, this.point(event));
    this.start = null;
    this.draft = null;
    if (box.width >= MIN_SIDE && box.height >= MIN_SIDE) this.addBox(box);
    else this.draw();
  }

  // The frames a new box covers: blank = every frame.
  boxFrames() {
    const text = $("mask-box-frames").value.trim();
    if (!text) return null;
    return parseFrames(text);
  }

  addBox(box) {
    $("mask-box-error").textContent = "";
    let frames;
    try {
      frames = this.boxFrames();
    } catch (err) {
      $("mask-box-error").textContent = `Frames of the box: ${err.message}`;
      return;
    }
    this.boxes.push(frames ? { ...box, frames } : box);
    this.render();
  }

  addTypedBox() {
    const read = (id) => Number($(id).value) / 100;
    const [x, y, width, height] = ["mask-box-x", "mask-box-y", "mask-box-width", "mask-box-height"].map(read);
    if (![x, y, width, height].every(Number.isFinite) || width <= 0 || height <= 0) {
      $("mask-box-error").textContent = "Give the box's left, top, width and height in percent.";
      return;
    }
    this.addBox(boxFrom({ x: clamp(x), y: clamp(y) }, { x: clamp(x + width), y: clamp(y + height) }));
  }

  removeBox(index) {
    this.boxes.splice(index, 1);
    this.render();
    const buttons = $("mask-boxes").querySelectorAll("button");
    (buttons[Math.min(index, buttons.length - 1)] ?? $("mask-box-add")).focus();
  }

  render() {
    const items = this.boxes.map((box, i) => {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove box ${i + 1}`);
      remove.addEventListener("click", () => this.removeBox(i));
      const item = document.createElement("li");
      item.append(describeBox(box, i), " ", remove);
      return item;
    });
    $("mask-boxes").replaceChildren(...items);
    $("mask-boxes-empty").hidden = this.boxes.length > 0;
    this.draw();
  }

  async uploadFile(file) {
    this.uploaded = null;
    $("mask-file-status").textContent = "";
    if (!file) return;
    $("mask-file-status").textContent = `Uploading ${file.name}…`;
    try {
      this.uploaded = await this.deps.upload(file);
      const { filename, frames, width, height } = this.uploaded;
      $("mask-file-status").textContent = `${filename}: ${frames} frames of ${width} × ${height}, ready.`;
    } catch (err) {
      $("mask-file-status").textContent = `The mask file was refused: ${err.message}`;
    }
  }

  /** The job body's `mask`, or null; FieldError for a field the API would refuse. */
  read() {
    switch (this.kind) {
      case "regions":
        if (!this.boxes.length) throw new FieldError("mask.boxes", "draw or add at least one box");
        return { kind: "regions", boxes: this.boxes };
      case "missing_frames":
        try {
          return { kind: "missing_frames", frames: parseFrames($("mask-frames").value) };
        } catch (err) {
          throw new FieldError("mask.frames", err.message);
        }
      case "upload":
        if (!this.uploaded) throw new FieldError("mask.video_id", "choose a mask file and wait for its upload");
        return { kind: "upload", video_id: this.uploaded.id };
      default:
        return null;
    }
  }
}

// Which training frame a frame of the clip is, or null if training skips it.
function trainingFrame(clipFrame, config) {
  const offset = clipFrame - (config.start ?? 0);
  const every = config.every ?? 1;
  if (offset < 0 || offset % every) return null;
  const index = offset / every;
  return index < (config.frames ?? Infinity) ? index : null;
}

function hole(box) {
  const node = document.createElement("div");
  node.className = "hole";
  Object.assign(node.style, {
    left: `${box.x * 100}%`,
    top: `${box.y * 100}%`,
    width: `${box.width * 100}%`,
    height: `${box.height * 100}%`,
  });
  return node;
}

/** The training clip as training saw it: `video` with the mask's holes laid over it. */
export function occludedView(video, mask, fps, config) {
  const wrap = document.createElement("div");
  wrap.className = config.resize === "stretch" ? "occluded stretch" : "occluded";
  wrap.append(video);
  // each hole with when it shows: given the clip's frame and the training frame it is (or null)
  const holes = [];
  if (mask.kind === "regions") {
    // a box's frames are the clip's; on a frame training skips, nothing was hidden
    for (const box of mask.boxes) {
      holes.push([hole(box), (clipFrame, index) => !box.frames || (index !== null && box.frames.includes(clipFrame))]);
    }
  } else if (mask.kind === "missing_frames") {
    // missing frames are the clip's too
    holes.push([hole({ x: 0, y: 0, width: 1, height: 1 }), (clipFrame, index) => index !== null && mask.frames.includes(clipFrame)]);
  }
  for (const [node] of holes) wrap.append(node);
  const update = () => {
    if (!wrap.isConnected) return;
    const clipFrame = Math.floor(video.currentTime * fps + 1e-3);
    const index = trainingFrame(clipFrame, config);
    for (const [node, shows] of holes) node.hidden = !shows(clipFrame, index);
    requestAnimationFrame(update);
  };
  requestAnimationFrame(update);
  return wrap;
}
