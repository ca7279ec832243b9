// The dyngen page: plain ES modules, no build step. It speaks only to the API it was served by.
import { ProgressSeries, progressChart } from "./chart.js";
import { FieldError, MaskEditor, occludedView } from "./masks.js";
import { SyncedPlayback } from "./sync.js";
import { Status, TERMINAL, Type } from "./job-states.js"; // served by the API from core's enums

const KEY_STORE = "dyngen-api-key";
const MAX_STREAMS = 4; // event streams at once; the server caps them per key
const PRESETS = { quick: { method: "lds" }, standard: {}, paper: { preset: "faithful" } };
const ANIMATE_SHOWN = new Set(["frames", "num_videos"]); // fields the animate form shows up front

const $ = (id) => document.getElementById(id);
const streams = new Map(); // job id -> AbortController of its event stream
const videoRows = new Map(); // video id -> its row, as the last list gave it
const series = new ProgressSeries(); // the loss and PSNR of each training, by epoch
let viewedJob = null;
let keyPrompt = null;
let masks = null; // the MaskEditor, once the page started
let playback = null; // the SyncedPlayback of the job view

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `the server answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function say(message) {
  $("status").textContent = message;
}

// ---- keys: asked once, kept in this tab's sessionStorage, sent only as a header ----

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey() {
  // several requests may meet a 401 at once: they all wait on one prompt
  keyPrompt ??= new Promise((resolve) => {
    const dialog = $("key-dialog");
    $("key-error").textContent = sessionStorage.getItem(KEY_STORE)
      ? "That key was refused (unknown or revoked). Try another."
      : "";
    sessionStorage.removeItem(KEY_STORE);
    $("key-form").onsubmit = () => {
      sessionStorage.setItem(KEY_STORE, $("key-input").value.trim());
      $("key-input").value = "";
      keyPrompt = null;
      resolve();
    };
    dialog.showModal();
    $("key-input").focus();
  });
  return keyPrompt;
}

async function api(path, options = {}) {
  const headers = { ...authHeaders(), ...(options.headers ?? {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    await askForKey();
    return api(path, options);
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function postJson(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

// Media: open mode streams from the URL (Range works); with a key, <video> cannot send the
// header, so the bytes are fetched with it and shown from a blob.
async function mediaSrc(url) {
  if (!sessionStorage.getItem(KEY_STORE)) return `${url}?inline=1`;
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new ApiError(response.status, null);
  return URL.createObjectURL(await response.blob());
}

// ---- upload ----

function sendFile(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest(); // fetch reports no upload progress
    xhr.open("POST", "/v1/videos");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) $("upload-progress").value = event.loaded / event.total;
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: the status says enough
      }
      if (xhr.status === 201) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error("the upload failed: the server could not be reached"));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

// An upload that asks for the key when the server wants one (the mask file's).
async function sendWithKey(file) {
  try {
    return await sendFile(file);
  } catch (err) {
    if (err.status !== 401) throw err;
    await askForKey();
    return sendWithKey(file);
  }
}

async function uploadFile(file) {
  $("upload-error").textContent = "";
  $("upload-progress").value = 0;
  say(`Uploading ${file.name}…`);
  let video;
  try {
    video = await sendFile(file);
  } catch (err) {
    if (err.status === 401) {
      await askForKey();
      return uploadFile(file);
    }
    $("upload-error").textContent = err.message;
    say("");
    return;
  }
  $("upload-progress").value = 1;
  showClip(video, file);
  await refreshVideos(video.id);
  say(`Uploaded ${video.filename}.`);
}

function showClip(video, file) {
  const facts = $("clip-facts");
  facts.replaceChildren();
  const size = `${video.width} × ${video.height}`;
  const fps = video.fps === null ? "—" : `${Number(video.fps.toFixed(2))}`;
  for (const [name, value] of [["frames", video.frames], ["size", size], ["fps", fps]]) {
    facts.append(el("dt", {}, name), el("dd", { "data-fact": name }, String(value)));
  }
  const player = $("clip-video");
  const still = $("clip-image");
  player.hidden = !file.type.startsWith("video/") || video.kind === "image";
  still.hidden = video.kind !== "image";
  if (!player.hidden) {
    player.src = URL.createObjectURL(file);
    player.play().catch(() => {});
  } else if (!still.hidden) {
    still.src = URL.createObjectURL(file); // a still to animate
  } // else a mask file: nothing to show
  $("clip").hidden = false;
}

function bindUpload() {
  $("file-input").addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) uploadFile(file);
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const [file] = event.dataTransfer.files;
    if (file) uploadFile(file);
  });
}

// A select's options: the uploads of one kind, the newly uploaded one chosen if it is of it.
function fillUploads(select, items, kind, selected) {
  const keep = select.value;
  const options = items
    .filter((video) => video.kind === kind)
    .map((video) => el("option", { value: video.id }, `${video.filename} (${video.id})`));
  select.replaceChildren(...options);
  const wanted = videoRows.get(selected)?.kind === kind ? selected : keep;
  if (wanted && options.some((option) => option.value === wanted)) select.value = wanted;
}

async function refreshVideos(selected) {
  const page = await api("/v1/videos?limit=100");
  for (const video of page.items) videoRows.set(video.id, video);
  fillUploads($("train-video"), page.items, "video", selected);
  fillUploads($("animate-image"), page.items, "image", selected);
  await masks.useClip(videoRows.get($("train-video").value));
}

// ---- forms generated from the OpenAPI document's config schemas ----

function variants(prop) {
  return prop.anyOf ?? [prop];
}

function fieldKind(prop) {
  const choices = variants(prop).find((p) => p.enum)?.enum;
  if (choices) return { kind: "choice", choices };
  const type = variants(prop).find((p) => p.type && p.type !== "null")?.type ?? "string";
  return { kind: type };
}

function schemaField(prefix, name, prop) {
  const id = `${prefix}-${name}`;
  const field = `config.${name}`;
  const { kind, choices } = fieldKind(prop);
  const shownDefault = prop.default === undefined ? "" : JSON.stringify(prop.default);
  let input;
  if (kind === "choice" || kind === "boolean") {
    const values = choices ?? [true, false];
    input = el("select", { id }, el("option", { value: "" }, `default (${shownDefault})`));
    for (const value of values) input.append(el("option", { value: JSON.stringify(value) }, String(value)));
  } else {
    const numeric = kind === "integer" || kind === "number";
    input = el("input", {
      id,
      type: numeric ? "number" : "text",
      step: kind === "number" ? "any" : undefined,
      placeholder: shownDefault ? `default: ${shownDefault}` : "",
      inputmode: numeric ? "decimal" : undefined,
    });
  }
  input.dataset.field = field;
  input.dataset.kind = kind;
  const help = el("p", { class: "help", id: `${id}-help` }, prop.description ?? "");
  const error = el("p", { class: "error field-error", id: `${id}-error`, "data-error-for": field });
  input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  return el("div", { class: "field" }, el("label", { for: id }, name), input, help, error);
}

function readField(input) {
  const raw = input.value.trim();
  if (input.dataset.kind === "choice" || input.dataset.kind === "boolean") return JSON.parse(raw);
  if (input.dataset.kind === "integer" || input.dataset.kind === "number") return Number(raw);
  if (input.dataset.kind === "array") {
    return raw.split(",").map((part) => {
      const item = part.trim();
      return item !== "" && !Number.isNaN(Number(item)) ? Number(item) : item;
    });
  }
  return raw;
}

function readConfig(container) {
  const config = {};
  for (const input of container.querySelectorAll("[data-field^='config.']")) {
    if (input.value.trim() !== "") config[input.dataset.field.slice(7)] = readField(input);
  }
  return config;
}

async function buildForms() {
  const openapi = await fetch("/openapi.json").then((r) => r.json());
  const schemas = openapi.components.schemas;
  const forms = [["train", "TrainConfig"], ["synth", "SynthesisConfig"], ["animate", "AnimateConfig"]];
  for (const [prefix, schema] of forms) {
    const props = schemas[schema]?.properties ?? {};
    $(`${prefix}-fields`).replaceChildren(
      ...Object.entries(props)
        .filter(([name]) => !(prefix === "animate" && ANIMATE_SHOWN.has(name)))
        .map(([name, prop]) => schemaField(prefix, name, prop)),
    );
  }
}

function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// The slot for a field's error: its own, else its nearest parent's ("mask.frames.0" -> "mask.frames").
function errorSlot(form, field) {
  for (let name = field; name; name = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : "") {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) return slot;
  }
  return null;
}

function fieldRefusal(err) {
  const message = `${err.field}: ${err.message}`;
  return new ApiError(422, { error: { message, details: [{ field: err.field, message: err.message }] } });
}

// A 422 (or a refusal naming a field) is shown next to each field it names.
function showErrors(form, formError, err) {
  const details = Array.isArray(err.body?.error?.details) ? err.body.error.details : [];
  let placed = 0;
  for (const detail of details) {
    const slot = detail.field && errorSlot(form, detail.field);
    if (!slot) continue;
    slot.textContent = detail.message || err.message;
    const field = slot.dataset.errorFor;
    form.querySelector(`[data-field="${CSS.escape(field)}"]`)?.setAttribute("aria-invalid", "true");
    const advanced = slot.closest("details");
    if (advanced) advanced.open = true;
    placed += 1;
  }
  formError.textContent = placed ? `Please fix the marked field(s): ${err.message}` : err.message;
  form.querySelector("[aria-invalid]")?.focus();
}

async function submitTraining(event) {
  event.preventDefault();
  const form = $("train-form");
  clearErrors(form);
  $("train-error").textContent = "";
  const preset = form.querySelector("input[name=preset]:checked").value;
  const videoId = $("train-video").value;
  const inpaint = purpose() === "inpaint";
  const body = {
    type: Type.TRAIN,
    video_ids: videoId ? [videoId] : [],
    config: { ...PRESETS[preset], ...readConfig($("train-fields")) },
  };
  if (inpaint) body.purpose = "inpaint";
  try {
    const mask = masks.read();
    if (inpaint && !mask) throw new FieldError("mask", "removing an object needs its mask: draw boxes over it or upload a mask file");
    if (mask) body.mask = mask;
    const job = await postJson("/v1/jobs", body);
    say(inpaint ? `Job ${job.id} queued: it removes the masked object.` : `Training job ${job.id} queued${mask ? " with its mask" : ""}.`);
    await refreshJobs();
  } catch (err) {
    showErrors(form, $("train-error"), err instanceof FieldError ? fieldRefusal(err) : err);
  }
}

function purpose() {
  return document.querySelector("input[name=purpose]:checked").value;
}

// Removing an object needs a mask and a trained model (not the quick LDS preview): choosing
// it picks boxes and the standard preset where nothing else was chosen.
function onPurpose() {
  const inpaint = purpose() === "inpaint";
  $("purpose-help").hidden = !inpaint;
  if (inpaint) {
    if (document.querySelector("input[name=preset]:checked").value === "quick") {
      document.querySelector("input[name=preset][value=standard]").checked = true;
    }
    if (masks.kind === "none") {
      document.querySelector("input[name=mask-kind][value=regions]").checked = true;
      masks.showPanel();
    }
  }
  masks.draw(); // the inpainting default stretches the frame
}

// ---- animation: a still brought to life with a trained model ----

function modelOption(model) {
  const source = model.job_id ? `trained by ${model.job_id}` : "imported";
  const lds = model.config.method === "lds" || model.metrics?.choice?.kept === "lds";
  const option = el("option", { value: model.id }, `${model.id} (${source}${lds ? "; an LDS: can't animate" : ""})`);
  option.disabled = lds;
  return option;
}

async function refreshModels() {
  const select = $("animate-model");
  const keep = select.value;
  const page = await api("/v1/models?limit=100");
  select.replaceChildren(...page.items.map(modelOption));
  const usable = [...select.options].filter((option) => !option.disabled).map((o) => o.value);
  select.value = usable.includes(keep) ? keep : usable[0] ?? "";
}

async function submitAnimation(event) {
  event.preventDefault();
  const form = $("animate-form");
  clearErrors(form);
  $("animate-error").textContent = "";
  const config = { ...readConfig($("animate-fields")), ...readConfig($("animate-main")) };
  const body = { type: Type.ANIMATE, model_id: $("animate-model").value, image_id: $("animate-image").value, config };
  try {
    if (!body.model_id) throw new FieldError("model_id", "train a model first (not the quick LDS preview), or pick one");
    if (!body.image_id) throw new FieldError("image_id", "upload a still image (PNG, JPEG or WebP) above");
    const job = await postJson("/v1/jobs", body);
    say(`Animation job ${job.id} queued.`);
    await refreshJobs();
  } catch (err) {
    showErrors(form, $("animate-error"), err instanceof FieldError ? fieldRefusal(err) : err);
  }
}

// ---- jobs ----

function progressText(progress) {
  const parts = [];
  if (progress.epochs) parts.push(`epoch ${progress.epoch ?? 0} / ${progress.epochs}`);
  if (progress.eta_seconds !== null && progress.eta_seconds !== undefined) {
    parts.push(`about ${Math.ceil(progress.eta_seconds)} s left`);
  }
  if (progress.loss !== null && progress.loss !== undefined) parts.push(`loss ${progress.loss.toPrecision(4)}`);
  return parts.join(" · ");
}

function jobItem(job) {
  const open = el("button", { type: "button", class: "link" }, `${job.type} ${job.id}`);
  open.addEventListener("click", () => openJob(job.id));
  const bar = el("progress", { max: "1", value: String(job.progress.fraction), "aria-label": `progress of ${job.id}` });
  const item = el(
    "li",
    { "data-job-id": job.id, "data-status": job.status },
    open,
    el("span", { class: `badge ${job.status}` }, job.status),
    bar,
    el("span", { class: "progress-text" }, progressText(job.progress)),
    progressChart(series.points(job.id), true),
  );
  if (!TERMINAL.has(job.status)) {
    const cancel = el("button", { type: "button", "aria-label": `cancel ${job.id}` }, "Cancel");
    cancel.disabled = job.cancel_requested;
    cancel.addEventListener("click", () => cancelJob(job.id));
    item.append(cancel);
  }
  if (retryable(job)) {
    const retry = el("button", { type: "button", "aria-label": `retry ${job.id}` }, "Retry");
    retry.addEventListener("click", () => retryJob(job));
    item.append(retry);
  }
  if (job.error) item.append(el("p", { class: "error" }, job.error.message));
  return item;
}

async function refreshJobs() {
  const page = await api("/v1/jobs?limit=20");
  $("job-list").replaceChildren(...page.items.map(jobItem));
  for (const job of page.items) if (!TERMINAL.has(job.status)) follow(job.id);
}

function onProgress(jobId, data) {
  const grew = series.add(jobId, data);
  if (grew && viewedJob === jobId) showChart(jobId);
  const item = document.querySelector(`[data-job-id="${jobId}"]`);
  if (!item) return;
  item.querySelector("progress").value = data.fraction ?? 0;
  item.querySelector(".progress-text").textContent = progressText(data);
  if (grew) item.querySelector(".progress-chart").replaceWith(progressChart(series.points(jobId), true));
}

function showChart(jobId) {
  $("job-chart-svg").replaceChildren(progressChart(series.points(jobId)));
}

// What the job recorded before this page followed it (the chart starts from its first epoch).
async function loadHistory(jobId) {
  let after = 0;
  for (;;) {
    const page = await api(`/v1/jobs/${jobId}/events?after=${after}`);
    for (const event of page.items) if (event.kind === "progress") series.add(jobId, event.data);
    if (!page.items.length || page.last_id === after) return;
    after = page.last_id;
  }
}

async function onEnd(jobId) {
  await refreshJobs();
  await refreshModels();
  // a view opened after the end already shows it: reopening would stop its videos
  if (viewedJob === jobId && !TERMINAL.has($("job-view").dataset.status)) await openJob(jobId);
}

function parseEvent(block) {
  const event = { kind: "message", data: "" };
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event.kind = line.slice(7);
    else if (line.startsWith("data: ")) event.data += line.slice(6);
    else if (line.startsWith("id: ")) event.id = Number(line.slice(4));
  }
  return event;
}

// Server-sent events read with fetch: EventSource cannot send the Authorization header.
async function follow(jobId, after = 0) {
  if (streams.has(jobId) || streams.size >= MAX_STREAMS) return;
  const controller = new AbortController();
  streams.set(jobId, controller);
  let last = after;
  let ended = false;
  try {
    const response = await fetch(`/v1/jobs/${jobId}/events?after=${after}`, {
      headers: { ...authHeaders(), Accept: "text/event-stream" },
      signal: controller.signal,
    });
    if (!response.ok) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!ended) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (event.id) last = event.id;
        if (event.kind === "progress") onProgress(jobId, JSON.parse(event.data).data);
        if (event.kind === "status") refreshJobs();
        if (event.kind === "end") ended = true;
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
  } finally {
    streams.delete(jobId);
  }
  if (ended) await onEnd(jobId);
  else setTimeout(() => follow(jobId, last), 2000); // dropped: resume after the last event
}

async function cancelJob(jobId) {
  try {
    const job = await api(`/v1/jobs/${jobId}/cancel`, { method: "POST" });
    say(job.status === Status.CANCELLED ? `Job ${jobId} cancelled.` : `Job ${jobId} stops after this epoch.`);
  } catch (err) {
    say(`Could not cancel ${jobId}: ${err.message}`);
  }
  await refreshJobs();
}

// A failed or cancelled training again, with the same clips, config, mask and seed.
async function retryJob(job) {
  const body = { type: Type.TRAIN, video_ids: job.video_ids, config: job.config, seed: job.seed };
  if (job.mask) body.mask = job.mask;
  try {
    const again = await postJson("/v1/jobs", body);
    say(`Job ${job.id} queued again as ${again.id}.`);
  } catch (err) {
    say(`Could not retry ${job.id}: ${err.message}`);
  }
  await refreshJobs();
}

function retryable(job) {
  return job.type === Type.TRAIN && (job.status === Status.FAILED || job.status === Status.CANCELLED);
}

// ---- one job: its videos side by side and in sync, quality, downloads, synthesis ----

const KIND_NAMES = {
  reconstruction_video: "reconstruction",
  recovered_video: "recovered video",
  side_by_side_video: "original | cleaned",
  inpainting_grid: "original above, cleaned below",
  video: "synthesis",
  reconstruction_grid: "reconstruction, frame by frame",
  loss_curve: "loss curve",
  grid: "syntheses, frame by frame",
};

function playable(caption, url) {
  const video = el("video", { muted: "", playsinline: "", preload: "auto", "aria-label": caption });
  video.muted = true;
  mediaSrc(url).then((src) => {
    video.src = src;
  });
  return video;
}

function figure(caption, media) {
  return el("figure", { "data-caption": caption }, media, el("figcaption", {}, caption));
}

function imageFigure(caption, url) {
  const image = el("img", { alt: caption });
  mediaSrc(url).then((src) => {
    image.src = src;
  });
  return figure(caption, image);
}

function artifactCaption(artifact, owner, names = KIND_NAMES) {
  const name = names[artifact.kind] ?? artifact.kind.replaceAll("_", " ");
  return `${name}${owner ? ` (${owner})` : ""}: ${artifact.filename}`;
}

// The training behind a job: itself, or the training that made a synthesis's model.
async function trainingOf(job) {
  if (job.type === Type.TRAIN) return job;
  const model = await api(`/v1/models/${job.model_id}`).catch(() => null);
  return model ? api(`/v1/jobs/${model.job_id}`).catch(() => null) : null;
}

// The syntheses to show: the job's own, or for a training the newest synthesis of its model.
async function synthesesFor(job) {
  if (job.type === Type.SYNTHESIZE) return job;
  if (job.status !== Status.SUCCEEDED) return null;
  const page = await api("/v1/jobs?type=synthesize&status=succeeded&limit=50");
  return page.items.find((other) => other.model_id === job.model_id) ?? null;
}

// The training clip and, for a masked run, the clip with its holes beside the recovered video.
async function trainingFigures(training) {
  const clipId = training.video_ids[0];
  const clipUrl = `/v1/videos/${clipId}/content`;
  const figures = [figure("training clip", playable("training clip", clipUrl))];
  const mask = training.mask;
  if (!mask) return figures;
  const clip = videoRows.get(clipId) ?? (await api(`/v1/videos/${clipId}`));
  const seen = playable("occluded clip", clipUrl);
  if (mask.kind === "upload") {
    const file = await api(`/v1/videos/${mask.video_id}`).catch(() => null);
    if (file?.kind === "video") figures.push(figure("mask (white = missing)", playable("mask", file.content_url)));
  } else {
    const caption = "occluded clip: what training saw (black = hidden)";
    figures.push(figure(caption, occludedView(seen, mask, clip.fps || 25, training.config)));
  }
  return figures;
}

// Where a job's videos show: the recovered one (beside the occluded clip), then the clip
// beside its cleaned version.
const FIRST_KINDS = ["recovered_video", "side_by_side_video"];

function videoRank(artifact) {
  const rank = FIRST_KINDS.indexOf(artifact.kind);
  return rank < 0 ? FIRST_KINDS.length : rank;
}

// One job's videos (the recovered and side-by-side ones first, after the occluded clip) and
// its pictures; `names` words the kinds.
function artifactFigures(owner, note, names = KIND_NAMES) {
  const caption = (a) => artifactCaption(a, note, names);
  const videos = owner.artifacts.filter((a) => a.media_type.startsWith("video/"));
  videos.sort((a, b) => videoRank(a) - videoRank(b));
  // a GIF beside its MP4 would show the same frames twice
  const stills = owner.artifacts.filter(
    (a) => a.media_type.startsWith("image/") && !(videos.length && a.media_type === "image/gif"),
  );
  return {
    videos: videos.map((a) => figure(caption(a), playable(caption(a), a.url))),
    stills: stills.map((a) => imageFigure(caption(a), a.url)),
  };
}

const ANIMATION_NAMES = { ...KIND_NAMES, video: "animation", grid: "animation, frame by frame" };

// An animation: the still it started from, then its videos and pictures.
async function animationMedia(job) {
  const sourceId = job.video_ids[0];
  const source = videoRows.get(sourceId) ?? (await api(`/v1/videos/${sourceId}`).catch(() => null));
  const { videos, stills } = artifactFigures(job, null, ANIMATION_NAMES);
  const start = source?.kind === "image" ? [imageFigure("the still image animated", `/v1/videos/${sourceId}/content`)] : [];
  return { figures: [...start, ...videos], images: stills };
}

// Everything to play side by side: the training's clips and videos, then the syntheses; the
// pictures (grids, loss curve) of the job itself after them.
async function jobMedia(job) {
  if (job.type === Type.ANIMATE) return animationMedia(job);
  const training = await trainingOf(job);
  const syntheses = await synthesesFor(job);
  const figures = training?.video_ids.length ? await trainingFigures(training) : [];
  const owners = [];
  if (training?.id === job.id) owners.push([training, null]);
  else if (training?.status === Status.SUCCEEDED) owners.push([training, `from ${training.id}`]);
  if (syntheses) owners.push([syntheses, syntheses.id === job.id ? null : `from ${syntheses.id}`]);
  const images = [];
  for (const [owner, note] of owners) {
    const { videos, stills } = artifactFigures(owner, note);
    figures.push(...videos);
    if (owner.id === job.id) images.push(...stills);
  }
  return { figures, images };
}

function describeWarning(warning) {
  return typeof warning === "string" ? warning : warning.message ?? JSON.stringify(warning);
}

// The quality report's numbers in words; anything else stays in metrics.json's list.
const REPORT_WORDS = {
  psnr: ["Reconstruction PSNR", (v) => `${v.toFixed(1)} dB (higher = the model fits the clip more closely)`],
  visible_mse: ["Reconstruction error (MSE)", (v) => v.toPrecision(3)],
  motion_ratio: ["Motion of the syntheses", (v) => `${v.toFixed(2)} × the clip's (near 1 is right)`],
  drift: ["Drift", (v) => `${v.toFixed(2)} (how much further the end of a synthesis looks from the clip than its start)`],
  novelty: ["Novelty", (v) => `${v.toFixed(2)} (low = the syntheses copy training frames)`],
  reconstruction_motion_ratio: ["Motion of the reconstruction", (v) => `${v.toFixed(2)} × the clip's`],
  occluded_fraction: ["Hidden by the mask", (v) => `${(v * 100).toFixed(1)} % of the pixels`],
  recovery_error: ["Recovery error", (v) => `${v.toFixed(1)} of 255, mean per hidden value (the paper's measure; lower is better)`],
  epochs: ["Epochs trained", (v) => String(v)],
  first_frame_psnr: ["First frame against the image", (v) => `${v.toFixed(1)} dB PSNR (higher = the animation starts closer to the image)`],
};

function reportRows(metrics) {
  const flat = { ...(metrics.quality ?? {}), ...metrics };
  return Object.entries(REPORT_WORDS)
    .filter(([key]) => typeof flat[key] === "number")
    .flatMap(([key, [name, words]]) => [el("dt", {}, name), el("dd", { "data-metric": key }, words(flat[key]))]);
}

function showQuality(job) {
  const { warnings = [], ...metrics } = job.metrics ?? {};
  $("job-warnings").replaceChildren(...warnings.map((w) => el("li", {}, describeWarning(w))));
  if (!warnings.length && job.status === Status.SUCCEEDED) $("job-warnings").append(el("li", {}, "No warnings: every number is in its usual range."));
  $("job-report").replaceChildren(...reportRows(metrics));
  const rows = Object.entries(metrics).filter(([, v]) => typeof v !== "object" || v === null);
  $("job-metrics").replaceChildren(
    ...rows.flatMap(([name, value]) => [
      el("dt", {}, name),
      el("dd", {}, typeof value === "number" ? String(Number(value.toPrecision(5))) : String(value)),
    ]),
  );
}

function downloadLink(artifact) {
  const size = `${(artifact.bytes / 1024).toFixed(1)} kB`;
  const link = el("a", { href: artifact.url, download: artifact.filename }, artifact.filename);
  link.addEventListener("click", async (event) => {
    if (!sessionStorage.getItem(KEY_STORE)) return; // open mode: the plain link works
    event.preventDefault();
    const response = await fetch(artifact.url, { headers: authHeaders() });
    const save = el("a", { href: URL.createObjectURL(await response.blob()), download: artifact.filename });
    save.click();
  });
  return el("li", {}, link, ` (${artifact.kind}, ${size})`);
}

const JOB_NAMES = { train: "Training", synthesize: "Synthesis", animate: "Animation" };

async function openJob(jobId) {
  const job = await api(`/v1/jobs/${jobId}`);
  viewedJob = jobId;
  const view = $("job-view");
  view.hidden = false;
  if (view.dataset.jobId !== jobId) {
    delete view.dataset.status; // another job's state until this one's is shown
    delete view.dataset.loaded;
  }
  view.dataset.jobId = jobId;
  $("job-title").textContent = `${JOB_NAMES[job.type] ?? job.type} job ${job.id}`;
  const summary = [job.status, progressText(job.progress)];
  if (job.error) summary.push(job.error.message);
  if (job.mask) summary.push(`masked (${job.mask.kind.replace("_", " ")})`);
  $("job-summary").textContent = summary.filter(Boolean).join(" — ");
  $("job-retry").hidden = !retryable(job);
  $("job-retry").onclick = () => retryJob(job);
  $("job-chart").hidden = job.type !== Type.TRAIN;
  if (job.type === Type.TRAIN) {
    await loadHistory(jobId);
    showChart(jobId);
  }
  const { figures, images } = await jobMedia(job);
  $("job-videos").replaceChildren(...figures, ...images);
  playback.use([...$("job-videos").querySelectorAll("video")]);
  $("sync-controls").hidden = !figures.length;
  showQuality(job);
  $("job-downloads").replaceChildren(...job.artifacts.map(downloadLink));
  const canSynthesize = job.type === Type.TRAIN && job.status === Status.SUCCEEDED && job.model_id;
  $("synth-form").hidden = !canSynthesize;
  $("synth-form").dataset.modelId = job.model_id ?? "";
  // set last: the view shows this state of the job in full
  view.dataset.status = job.status;
  view.dataset.loaded = jobId;
  $("job-title").scrollIntoView({ block: "start" });
}

async function submitSynthesis(event) {
  event.preventDefault();
  const form = $("synth-form");
  clearErrors(form);
  $("synth-error").textContent = "";
  const body = { type: Type.SYNTHESIZE, model_id: form.dataset.modelId, config: readConfig($("synth-fields")) };
  try {
    const job = await postJson("/v1/jobs", body);
    say(`Synthesis job ${job.id} queued.`);
    await refreshJobs();
    await openJob(job.id);
  } catch (err) {
    showErrors(form, $("synth-error"), err);
  }
}

async function start() {
  masks = new MaskEditor({ upload: sendWithKey, source: (id) => mediaSrc(`/v1/videos/${id}/content`) });
  playback = new SyncedPlayback($("sync-play"), $("sync-seek"), $("sync-time"));
  bindUpload();
  $("train-form").addEventListener("submit", submitTraining);
  $("train-video").addEventListener("change", () => masks.useClip(videoRows.get($("train-video").value)));
  $("synth-form").addEventListener("submit", submitSynthesis);
  $("animate-form").addEventListener("submit", submitAnimation);
  for (const radio of document.querySelectorAll("input[name=purpose]")) radio.addEventListener("change", onPurpose);
  $("jobs-refresh").addEventListener("click", refreshJobs);
  await buildForms();
  $("train-resize")?.addEventListener("change", () => masks.draw());
  await refreshVideos();
  await refreshJobs();
  await refreshModels();
  document.body.dataset.ready = "true";
}

start().catch((err) => say(`The page could not start: ${err.message}`));
